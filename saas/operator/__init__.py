"""The operator view: platform admins see every company (plan, seats, storage, status, MRR) and
suspend or resume one, on the public host and from the command line."""
