"""Rows in bulk, in plain SQL: the applier's reads and writes, without the ORM's per-query compilation.

Loading a batch's rows through the ORM spent most of its time building SQL and model instances (measured:
the query compiler and `Model.__init__` were 60 % of applying a batch, the rules 3 %). Here each table's
SELECT and upsert are plain statements over the model's own columns; values still pass through each
field's own conversions (`get_db_prep_save`, the backend's converters), except where those change no value
the rules can hold (text, numbers, booleans, keys: passed as they are), and on SQLite a datetime, read and
written in the one format Django itself stores there (UTC, ISO 8601, no offset), and JSON text. On SQLite the
statements take the driver's own placeholders (`execute`), and new rows skip `Model.__init__` (`Table.new`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import cached_property
from operator import attrgetter
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    CharField,
    DateTimeField,
    FloatField,
    ForeignKey,
    IntegerField,
    JSONField,
    Model,
    TextField,
)
from django.db.models.base import ModelState
from django.utils import timezone

# On SQLite a datetime is the text Django stores: UTC, ISO 8601, no offset. Reading it as text (`Table.selected`)
# and parsing it with its zone costs a tenth of the driver's converter and `replace(tzinfo=…)`; each text read
# is remembered for the value it parsed to, so a row written back hands the same text again without formatting
# it (`str()` of a datetime costs as much as parsing). The mapping is a function of the value, whoever fills it.
_texts: dict[datetime, str] = {}
_TEXTS_KEPT = 50_000


def _sqlite_datetime_in(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value + "+00:00")
    if len(_texts) >= _TEXTS_KEPT:
        _texts.clear()
    _texts[parsed] = value
    return parsed


def _sqlite_datetime_out(value: datetime | None) -> str | None:
    if value is None:
        return None
    text = _texts.get(value)
    if text is not None:
        return text
    if value.tzinfo is UTC:  # nearly always (timezone.now(), the readers, parsed webhook times): no conversion
        return str(value)[:-6]  # without "+00:00"
    return str(value.astimezone(UTC).replace(tzinfo=None))


def _sqlite_json_in(value: str | None):
    """As JSONField.from_db_value with the default decoder; an empty list or object without the parser."""
    if value is None:
        return None
    return [] if value == "[]" else {} if value == "{}" else json.loads(value)


def _sqlite_json_out(value) -> str | None:
    """As JSONField.get_db_prep_save with the default encoder (SQLite stores the text)."""
    if value is None:
        return None
    return "[]" if value == [] else json.dumps(value)


# Fields whose `get_db_prep_save` hands a value of their type to the driver unchanged (on SQLite and
# PostgreSQL): their values are passed as they are, without the per-value calls (a fifth of a bulk write).
_AS_IS = (CharField, TextField, IntegerField, BooleanField, FloatField, ForeignKey)


def as_is(value):
    """A value the driver takes (or hands back) unchanged."""
    return value


def _plain_json(field) -> bool:
    return isinstance(field, JSONField) and field.encoder is None and field.decoder is None


class Table:
    """One model's table, read and written in bulk."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields]
        self.names = [f.attname for f in self.fields]

    @cached_property
    def quoted(self) -> str:
        return connection.ops.quote_name(self.model._meta.db_table)

    def column(self, name: str) -> str:
        return connection.ops.quote_name(self.model._meta.get_field(name).column)

    @cached_property
    def _readers(self) -> list[tuple[int, Callable[[Any], Any]]]:
        """How the columns that need it are converted from the driver's values."""
        return [(i, read) for i, f in enumerate(self.fields) if (read := self.reader(f.attname)) is not None]

    def selected(self, name: str) -> str:
        """The column as a SELECT reads it, for `reader`: on SQLite a datetime as its text."""
        field = self.model._meta.get_field(name)
        if connection.vendor == "sqlite" and isinstance(field, DateTimeField):
            return f"CAST({self.column(name)} AS TEXT)"
        return self.column(name)

    def reader(self, name: str) -> Callable[[Any], Any] | None:
        """How the driver's value of the column, selected as `selected(name)`, becomes the field's value, as the
        ORM would make it (None: as is)."""
        field = self.model._meta.get_field(name)
        if connection.vendor == "sqlite" and isinstance(field, DateTimeField):
            return _sqlite_datetime_in
        if connection.vendor == "sqlite" and _plain_json(field):
            return _sqlite_json_in
        expression = field.get_col(self.model._meta.db_table)
        converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if not converters:
            return None

        def convert(value):
            for converter in converters:
                value = converter(value, expression, connection)
            return value

        return convert

    @cached_property
    def _writers(self) -> list[Callable[[Any], Any]]:
        return [self.writer(f.attname) for f in self.fields]

    def writer(self, name: str) -> Callable[[Any], Any]:
        """How a value of the column is handed to the driver, as the ORM would do it."""
        field = self.model._meta.get_field(name)
        if isinstance(field, DateTimeField):
            return _sqlite_datetime_out if connection.vendor == "sqlite" else as_is
        if connection.vendor == "sqlite" and _plain_json(field):
            return _sqlite_json_out
        if isinstance(field, _AS_IS):
            return as_is
        return lambda value: field.get_db_prep_save(value, connection)

    @cached_property
    def _defaults(self) -> list[tuple[str, Callable[[], Any]]]:
        return [(f.attname, f.get_default) for f in self.fields]

    def new(self, **values: Any) -> Model:
        """A new row with these column values (attnames: `conference_id`, not `conference`) and every other
        column's default: `Model(**values)` without its per-field work (a leg: 4.0 µs instead of 9.6)."""
        row = self.model.__new__(self.model)
        attributes = row.__dict__
        for name, default in self._defaults:
            attributes[name] = default()
        attributes.update(values)
        row._state = ModelState()
        return row

    def select(self, where: str, params: Sequence[Any] = (), *, suffix: str = "") -> list[Model]:
        """Model instances for `SELECT <every column> FROM <table> WHERE <where> <suffix>`."""
        rows = fetch(f"SELECT {', '.join(self.selected(n) for n in self.names)} FROM {self.quoted} WHERE {where} {suffix}",
                     list(params))
        readers, names, model, alias = self._readers, self.names, self.model, connection.alias
        out = []
        for fetched in rows:
            values = list(fetched)
            for i, read in readers:
                values[i] = read(values[i])
            # As Model.from_db, without __init__'s per-field work: the values are complete and converted.
            row = model.__new__(model)
            row.__dict__.update(zip(names, values, strict=True))
            row._state = ModelState()
            row._state.adding, row._state.db = False, alias
            out.append(row)
        return out

    def upsert(self, rows: list[Model], unique: Sequence[str], updated: Iterable[str] | None) -> None:
        """INSERT … ON CONFLICT (`unique`) DO UPDATE SET the `updated` columns (and any auto_now time), or DO
        NOTHING when `updated` is None: one statement for new and changed rows alike. A new row gets every
        column but its id."""
        if not rows:
            return
        fields = [(f, w) for f, w in zip(self.fields, self._writers, strict=True) if not f.primary_key]
        auto_now = [f for f, _ in fields if getattr(f, "auto_now", False)]
        now = timezone.now()
        for row in rows:
            for field in auto_now:
                setattr(row, field.attname, now)
        quote = connection.ops.quote_name
        keys = {self.model._meta.get_field(name).column for name in unique}
        if updated is None:
            action = "DO NOTHING"
        else:
            changed = set(updated) | {f.attname for f in auto_now}
            action = "DO UPDATE SET " + ", ".join(
                f"{quote(f.column)} = excluded.{quote(f.column)}"
                for f, _ in fields
                if f.attname in changed and f.column not in keys
            )
        one = "(" + ", ".join(["%s"] * len(fields)) + ")"
        head = f"INSERT INTO {self.quoted} ({', '.join(quote(f.column) for f, _ in fields)}) VALUES "
        conflict = ", ".join(quote(self.model._meta.get_field(name).column) for name in unique)
        per_statement = max(1, 30000 // len(fields))  # within SQLite's 32,766 variables
        values_of = attrgetter(*(f.attname for f, _ in fields))
        converted = [(i, write) for i, (_, write) in enumerate(fields) if write is not as_is]
        with connection.cursor() as cursor:
            for start in range(0, len(rows), per_statement):
                chunk = rows[start : start + per_statement]
                params: list[Any] = []
                for row in chunk:
                    values = list(values_of(row))
                    for i, write in converted:
                        values[i] = write(values[i])
                    params.extend(values)
                execute(cursor, f"{head}{', '.join([one] * len(chunk))} ON CONFLICT ({conflict}) {action}", params)


def execute(cursor, sql: str, params: Sequence[Any]) -> None:
    """`cursor.execute(sql, params)`, with `%s` placeholders. On SQLite, when nothing records or wraps the
    statements (tests do), the driver gets its own `?` straight away: Django rewrites `%s` with a regular
    expression over the whole statement, a millisecond for a bulk upsert's thousands of values."""
    db = cursor.db
    if db.vendor == "sqlite" and not db.queries_logged and not db.execute_wrappers:
        with db.wrap_database_errors:
            sqlite3.Cursor.execute(cursor.cursor, sql.replace("%s", "?"), params)
    else:
        cursor.execute(sql, params)


def fetch(sql: str, params: Sequence[Any]) -> list[tuple]:
    """Every row of a SELECT (or of an INSERT's RETURNING), through `execute`."""
    with connection.cursor() as cursor:
        execute(cursor, sql, params)
        return cursor.fetchall()


def placeholders(values: Sequence[Any]) -> str:
    """`%s, %s, …` for an IN list (never empty: SQL has no empty IN list, and none matches NULL)."""
    return ", ".join(["%s"] * len(values)) or "NULL"


_tables: dict[type[Model], Table] = {}


def table(model: type[Model]) -> Table:
    if model not in _tables:
        _tables[model] = Table(model)
    return _tables[model]
