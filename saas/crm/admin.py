"""CRM settings an owner or administrator changes: pipelines and stages, custom fields,
classification lists, required fields, access rules, departments, and handing a leaving
employee's records to someone else."""
import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select, text, update

from saas.auth.models import Membership
from saas.errors import Conflict, Invalid, NotFound
from saas.settings.services import forget_cache, get_setting, set_setting
from tenants.db import db
from tenants.models import utcnow

from . import access
from .fields import CLASSIFIERS, CUSTOM_KINDS, STANDARD, slugify_key
from .models import (RECORD_MODELS, AccessRule, AuditEntry, CustomField, Deal, Department, Entity, Lead, ListItem,
                     Pipeline, Stage, StageKind, StaffDepartment)
from .services import FieldErrors, _is_active_member, pipelines


def _name(raw, field: str = "name", limit: int = 200) -> str:
    value = (raw or "").strip() if isinstance(raw, str) else ""
    if not value:
        raise Invalid(_l("Give it a name."), field=field)
    if len(value) > limit:
        raise Invalid(_l("Too long: %(n)d characters at most.", n=limit), field=field)
    return value


# --- pipelines and stages ------------------------------------------------------------------

def create_pipeline(actor: Membership, name: str, stages: list[dict] | None = None) -> Pipeline:
    access.require_manager(actor)
    position = db.session.scalar(select(func.coalesce(func.max(Pipeline.position), -1) + 1)
                                 .where(Pipeline.entity == Entity.DEAL))
    created = Pipeline(entity=Entity.DEAL, name=_name(name), position=position)
    db.session.add(created)
    db.session.flush()
    save_stages(actor, created.id, stages or [
        {"name": str(_l("New")), "kind": StageKind.OPEN}, {"name": str(_l("In progress")), "kind": StageKind.OPEN},
        {"name": str(_l("Won")), "kind": StageKind.WON}, {"name": str(_l("Lost")), "kind": StageKind.LOST}])
    return created


def rename_pipeline(actor: Membership, pipeline_id: int, name: str) -> Pipeline:
    access.require_manager(actor)
    found = _pipeline(pipeline_id)
    found.name = _name(name)
    return found


def delete_pipeline(actor: Membership, pipeline_id: int) -> None:
    access.require_manager(actor)
    found = _pipeline(pipeline_id)
    if found.entity != Entity.DEAL:
        raise Conflict(_l("The lead stage bar cannot be deleted."))
    if len(pipelines(Entity.DEAL)) == 1:
        raise Conflict(_l("Keep at least one pipeline."))
    if db.session.scalar(select(Deal.id).where(Deal.pipeline_id == found.id).limit(1)) is not None:
        raise Conflict(_l("Deals are in this pipeline (some maybe in the recycle bin). Move them first."))
    db.session.delete(found)


def _pipeline(pipeline_id: int) -> Pipeline:
    found = db.session.get(Pipeline, pipeline_id)
    if found is None:
        raise NotFound(_l("No such pipeline."))
    return found


def save_stages(actor: Membership, pipeline_id: int, stages: list[dict]) -> Pipeline:
    """Replace the stage list: rename, recolour, reorder, add; removing a stage that holds
    records is refused. Open stages come first, then one won stage, then lost ones."""
    access.require_manager(actor)
    found = _pipeline(pipeline_id)
    kinds = [s.get("kind", StageKind.OPEN) for s in stages]
    errors = {}
    if kinds.count(StageKind.OPEN) < 1 or kinds.count(StageKind.WON) != 1 or kinds.count(StageKind.LOST) < 1:
        errors["stages"] = [str(_l("Keep at least one open stage, exactly one won (qualified) stage and "
                                   "at least one lost (junk) stage."))]
    elif kinds != sorted(kinds, key=[StageKind.OPEN, StageKind.WON, StageKind.LOST].index):
        errors["stages"] = [str(_l("Put the open stages first, then the won stage, then the lost ones."))]
    for index, stage in enumerate(stages):
        if not str(stage.get("name") or "").strip():
            errors[f"stages.{index}.name"] = [str(_l("Give it a name."))]
        if stage.get("kind") not in (StageKind.OPEN, StageKind.WON, StageKind.LOST):
            errors[f"stages.{index}.kind"] = [str(_l("Choose open, won or lost."))]
        if stage.get("color") and not re.fullmatch(r"#[0-9a-fA-F]{6}", str(stage["color"])):
            errors[f"stages.{index}.color"] = [str(_l("Use a colour like #4f7cac."))]
    if errors:
        raise FieldErrors(errors)
    existing = {stage.id: stage for stage in found.stages}
    kept = {int(s["id"]) for s in stages if s.get("id")}
    if unknown := kept - existing.keys():
        raise Invalid(_l("Stage %(id)s is not in this pipeline.", id=min(unknown)), field="stages")
    for stage_id in existing.keys() - kept:
        if _stage_in_use(stage_id):
            raise Conflict(_l("“%(name)s” still holds records. Move them to another stage first.",
                              name=existing[stage_id].name))
        found.stages.remove(existing[stage_id])
    for position, spec in enumerate(stages):
        stage = existing.get(int(spec["id"])) if spec.get("id") else None
        if stage is None:
            stage = Stage()
            found.stages.append(stage)
        stage.name, stage.kind, stage.position = str(spec["name"]).strip()[:200], spec["kind"], position
        stage.color = spec.get("color") or stage.color or "#4f7cac"
    db.session.flush()
    db.session.expire(found, ["stages"])
    return found


def _stage_in_use(stage_id: int) -> bool:
    return any(db.session.scalar(select(model.id).where(model.stage_id == stage_id).limit(1)) is not None
               for model in (Deal, Lead))


# --- custom fields -------------------------------------------------------------------------

def create_custom_field(actor: Membership, entity: str, *, label: str, type: str, required: bool = False,
                        items: list[str] | None = None, target: str | None = None, key: str | None = None
                        ) -> CustomField:
    access.require_manager(actor)
    if entity not in Entity.ALL:
        raise Invalid(_l("Choose leads, contacts, companies or deals."), field="entity")
    if type not in CUSTOM_KINDS:
        raise Invalid(_l("Choose a field type."), field="type")
    label = _name(label, "label")
    key = (key or slugify_key(label) or f"field_{_next_field_number()}").lower()
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,59}", key):
        raise Invalid(_l("Use Latin letters, digits and _ for the key, starting with a letter."), field="key")
    if any(f.name == key for f in STANDARD[entity]) or _key_taken(entity, key):
        raise Conflict(_l("A field with the key “%(key)s” exists. Choose another.", key=key), field="key")
    options = {}
    if type in ("list", "multilist"):
        options = _list_options({}, items or [])
        if not options["items"]:
            raise Invalid(_l("Add at least one list item."), field="items")
    if type == "link":
        if target not in Entity.ALL:
            raise Invalid(_l("Choose what the field links to."), field="target")
        options = {"target": target}
    position = db.session.scalar(select(func.coalesce(func.max(CustomField.position), -1) + 1)
                                 .where(CustomField.entity == entity))
    created = CustomField(entity=entity, key=key, label=label, type=type, required=bool(required),
                          options=options, position=position)
    db.session.add(created)
    db.session.flush()
    forget_cache("custom_fields")
    return created


def _key_taken(entity: str, key: str) -> bool:
    return db.session.scalar(select(CustomField.id).where(CustomField.entity == entity, CustomField.key == key)) is not None


def _next_field_number() -> int:
    return (db.session.scalar(select(func.max(CustomField.id))) or 0) + 1


def _list_options(options: dict, items: list) -> dict:
    """The list's items from `items`: {"id", "label"} renames a kept item (stored values point at
    ids), a plain label is matched by label or added with a new id."""
    known = {item["id"]: item for item in options.get("items", [])}
    by_label = {item["label"].casefold(): item for item in known.values()}
    next_id = options.get("next_id", max(known, default=0) + 1)
    result = []
    for entry in items:
        label = str(entry.get("label") if isinstance(entry, dict) else entry).strip()[:200]
        if not label or label.casefold() in {i["label"].casefold() for i in result}:
            continue
        kept = known.get(_int(entry.get("id"))) if isinstance(entry, dict) else by_label.get(label.casefold())
        if kept is None:
            kept, next_id = {"id": next_id}, next_id + 1
        result.append({"id": kept["id"], "label": label})
    return {"items": result, "next_id": next_id}


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def update_custom_field(actor: Membership, field_id: int, *, label: str | None = None, required: bool | None = None,
                        items: list[str] | None = None) -> CustomField:
    access.require_manager(actor)
    found = _custom_field(field_id)
    if label is not None:
        found.label = _name(label, "label")
    if required is not None:
        found.required = bool(required)
    if items is not None and found.type in ("list", "multilist"):
        options = _list_options(found.options, items)
        if not options["items"]:
            raise Invalid(_l("Add at least one list item."), field="items")
        kept = {item["id"] for item in options["items"]}
        _forget_list_values(found, [item["id"] for item in found.options.get("items", []) if item["id"] not in kept])
        found.options = options
    return found


def _forget_list_values(field: CustomField, removed: list[int]) -> None:
    """Records that had a removed item no longer have it (a single list becomes empty)."""
    table = RECORD_MODELS[field.entity].__tablename__
    for item_id in removed:
        params = {"key": field.key, "item": item_id}
        if field.type == "list":
            db.session.execute(text(f"UPDATE {table} SET custom = custom - CAST(:key AS text)"
                                    " WHERE custom @> jsonb_build_object(CAST(:key AS text), CAST(:item AS int))"),
                               params)
        else:
            db.session.execute(text(
                f"UPDATE {table} SET custom = jsonb_set(custom, ARRAY[CAST(:key AS text)],"
                " (SELECT coalesce(jsonb_agg(e), '[]') FROM jsonb_array_elements(custom -> CAST(:key AS text)) e"
                "  WHERE e <> to_jsonb(CAST(:item AS int))))"
                " WHERE custom @> jsonb_build_object(CAST(:key AS text), jsonb_build_array(CAST(:item AS int)))"),
                params)


def add_list_item(field: CustomField, label: str) -> int:
    """The id of `label` in a list field, adding it if missing (used when conversion carries values)."""
    for item in field.options.get("items", []):
        if item["label"].casefold() == label.casefold():
            return item["id"]
    options = _list_options(field.options, [*(i["label"] for i in field.options.get("items", [])), label])
    field.options = options
    return options["items"][-1]["id"]


def delete_custom_field(actor: Membership, field_id: int) -> None:
    """The field and its values go (values stay readable in the records' history)."""
    access.require_manager(actor)
    found = _custom_field(field_id)
    model = RECORD_MODELS[found.entity]
    db.session.execute(update(model).where(model.custom.has_key(found.key))
                       .values(custom=model.custom.op("-")(found.key)).execution_options(synchronize_session=False))
    db.session.delete(found)
    forget_cache("custom_fields")


def _custom_field(field_id: int) -> CustomField:
    found = db.session.get(CustomField, field_id)
    if found is None:
        raise NotFound(_l("No such field."))
    return found


# --- required standard fields and other company settings -----------------------------------

def set_required_fields(actor: Membership, entity: str, names: list[str]) -> None:
    access.require_manager(actor)
    allowed = {f.name for f in STANDARD[entity] if f.requirable}
    if unknown := set(names) - allowed:
        raise Invalid(_l("These fields cannot be made required: %(names)s.", names=", ".join(sorted(unknown))),
                      field="required")
    required = dict(get_setting("crm.required", {}))
    required[entity] = sorted(set(names))
    set_setting("crm.required", required)


def set_phone_region(actor: Membership, region: str) -> None:
    import phonenumbers
    access.require_manager(actor)
    region = (region or "").strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise Invalid(_l("Use a two-letter country code such as RU, UA, KZ or TH."), field="phone_region")
    set_setting("crm.phone_region", region)


def set_default_currency(actor: Membership, currency: str) -> None:
    from .fields import CURRENCIES
    access.require_manager(actor)
    if currency not in CURRENCIES:
        raise Invalid(_l("Use one of %(codes)s.", codes=", ".join(CURRENCIES)), field="currency")
    set_setting("crm.currency", currency)


# --- classification lists of companies -----------------------------------------------------

def list_items(list_key: str) -> list[ListItem]:
    return list(db.session.scalars(select(ListItem).where(ListItem.list_key == list_key)
                                   .order_by(ListItem.position, ListItem.id)))


def add_classifier_item(actor: Membership, list_key: str, label: str) -> ListItem:
    access.require_manager(actor)
    if list_key not in CLASSIFIERS:
        raise NotFound(_l("No such list."))
    label = _name(label, "label")
    if db.session.scalar(select(ListItem.id).where(ListItem.list_key == list_key, ListItem.label == label)):
        raise Conflict(_l("“%(label)s” is already in the list.", label=label), field="label")
    position = db.session.scalar(select(func.coalesce(func.max(ListItem.position), -1) + 1)
                                 .where(ListItem.list_key == list_key))
    item = ListItem(list_key=list_key, label=label, position=position)
    db.session.add(item)
    db.session.flush()
    return item


def delete_classifier_item(actor: Membership, item_id: int) -> None:
    """Companies that had it keep their other data; the field just becomes empty."""
    _delete_row(actor, ListItem, item_id, _l("No such list item."))


def _delete_row(actor: Membership, model, row_id: int, missing) -> None:
    access.require_manager(actor)
    found = db.session.get(model, row_id)
    if found is None:
        raise NotFound(missing)
    db.session.delete(found)


# --- access rules and departments ----------------------------------------------------------

def set_access_rule(actor: Membership, role: str, entity: str, *, see: str, edit: str) -> None:
    access.require_manager(actor)
    if role not in access.RULED_ROLES or entity not in Entity.ALL:
        raise Invalid(_l("Choose a role and a record type."), field="role")
    if see not in access.SCOPES or edit not in access.SCOPES:
        raise Invalid(_l("Choose all, department or own."), field="see")
    if access.SCOPES.index(edit) < access.SCOPES.index(see):
        raise Invalid(_l("One cannot edit more than one sees."), field="edit")
    row = db.session.get(AccessRule, (role, entity)) or AccessRule(role=role, entity=entity)
    row.see, row.edit = see, edit
    db.session.add(row)
    forget_cache("access_rules")


def departments() -> list[Department]:
    return list(db.session.scalars(select(Department).order_by(Department.name)))


def department_of() -> dict[int, int]:
    """user id → department id."""
    return dict(db.session.execute(select(StaffDepartment.user_id, StaffDepartment.department_id)).all())


def create_department(actor: Membership, name: str) -> Department:
    access.require_manager(actor)
    name = _name(name)
    if db.session.scalar(select(Department.id).where(Department.name == name)):
        raise Conflict(_l("There is a department with this name."), field="name")
    created = Department(name=name)
    db.session.add(created)
    db.session.flush()
    return created


def delete_department(actor: Membership, department_id: int) -> None:
    """Its people stay, without a department."""
    _delete_row(actor, Department, department_id, _l("No such department."))


def assign_department(actor: Membership, user_id: int, department_id: int | None) -> None:
    access.require_manager(actor)
    if not _is_active_member(user_id):
        raise NotFound(_l("No such employee."))
    db.session.execute(delete(StaffDepartment).where(StaffDepartment.user_id == user_id))
    if department_id:
        if db.session.get(Department, department_id) is None:
            raise NotFound(_l("No such department."))
        db.session.add(StaffDepartment(user_id=user_id, department_id=department_id))


# --- an employee leaves --------------------------------------------------------------------

def reassign_records(actor: Membership, from_user_id: int, to_user_id: int,
                     entities: tuple[str, ...] = Entity.ALL) -> dict[str, int]:
    """Give every record of one person to another, each change in the audit log; returns counts."""
    access.require_manager(actor)
    if from_user_id == to_user_id:
        raise Invalid(_l("Choose someone else to receive the records."), field="to_user_id")
    if not _is_active_member(to_user_id):
        raise Invalid(_l("Choose an active employee to receive the records."), field="to_user_id")
    counts = {}
    for entity in entities:
        model = RECORD_MODELS[entity]
        title = model.name if entity == Entity.COMPANY else (
            func.concat_ws(" ", model.first_name, model.last_name) if entity == Entity.CONTACT else model.title)
        moved = db.session.execute(
            update(model).where(model.responsible_id == from_user_id, model.deleted_at.is_(None))
            .values(responsible_id=to_user_id, updated_at=utcnow())
            .returning(model.id, title.label("title"))).all()
        if moved:
            db.session.execute(AuditEntry.__table__.insert(), [
                {"at": utcnow(), "user_id": actor.user_id, "entity": entity, "record_id": row.id, "action": "update",
                 "title": (row.title or "")[:300], "changes": {"responsible_id": [from_user_id, to_user_id]},
                 "refs": [f"{entity}:{row.id}"]} for row in moved])
        counts[entity] = len(moved)
    return counts


def records_held_by(user_id: int) -> dict[str, int]:
    return {entity: db.session.scalar(select(func.count()).select_from(model).where(
        model.responsible_id == user_id, model.deleted_at.is_(None))) for entity, model in RECORD_MODELS.items()}
