"""Flask extensions, created once and bound in create_app."""
import ipaddress

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from tenants.db import db  # noqa: F401  (re-exported: the one SQLAlchemy handle)


def client_address() -> str:
    """Who is asking, for per-address limits: the remote address (ProxyFix sets it from
    X-Forwarded-For when PROXY_FIX > 0), an IPv6 client counted by its /64 network, since
    one customer line is given a whole /64 and could otherwise rotate addresses freely."""
    address = get_remote_address()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
limiter = Limiter(key_func=client_address, default_limits=[])
