"""The CNRM directory: service categories, regions, and the providers that serve them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow

provider_category = Table(
    "provider_category",
    Base.metadata,
    Column("provider_id", ForeignKey("provider.id", ondelete="CASCADE"), primary_key=True),
    Column("category_code", ForeignKey("category.code", ondelete="CASCADE"), primary_key=True),
)

provider_region = Table(
    "provider_region",
    Base.metadata,
    Column("provider_id", ForeignKey("provider.id", ondelete="CASCADE"), primary_key=True),
    Column("region_code", ForeignKey("region.code", ondelete="CASCADE"), primary_key=True),
)


class Category(Base):
    """A kind of need; `sms_label` is the neutral word an SMS may show (never "health")."""

    __tablename__ = "category"

    code: Mapped[str] = mapped_column(String(30), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    sms_label: Mapped[str] = mapped_column(String(30))
    position: Mapped[int] = mapped_column(default=0)


class Region(Base):
    """A region of Mali or the Bamako district; `part_of` names the region it was cut from."""

    __tablename__ = "region"

    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    part_of: Mapped[str | None] = mapped_column(String(20))


class Provider(Base):
    """A CNRM member's service; `national` ones take referrals from every region."""

    __tablename__ = "provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(40))
    national: Mapped[bool] = mapped_column(default=False)
    daily_capacity: Mapped[int] = mapped_column(default=10)
    language: Mapped[str] = mapped_column(String(5), default="fr")
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    categories: Mapped[list[Category]] = relationship(secondary=provider_category)
    regions: Mapped[list[Region]] = relationship(secondary=provider_region)
    numbers: Mapped[list[ProviderNumber]] = relationship(
        back_populates="provider", cascade="all, delete-orphan", order_by="ProviderNumber.id"
    )

    def replace_numbers(
        self, numbers: Sequence[tuple[str, str]], labels: Mapping[str, str | None] | None = None
    ) -> None:
        """Make the focal points' numbers these (E.164, keyed hash), in this order.

        A number the provider had keeps its row (found by its hash, the unique key), so that a
        number moved from one line to another is never deleted then inserted; the others go.
        `labels` (by hash) sets each number's label; without it, a kept number keeps its own.
        """
        keep = {n.phone_hash: n for n in self.numbers}
        rows = []
        for e164, digest in numbers:
            row = keep.get(digest) or ProviderNumber(phone_hash=digest)
            row.phone_e164 = e164
            if labels is not None:
                row.label = labels.get(digest)
            rows.append(row)
        self.numbers = rows


class ProviderNumber(Base):
    """A focal point's SMS number; replies are recognised by its keyed hash."""

    __tablename__ = "provider_number"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id", ondelete="CASCADE"), index=True)
    phone_e164: Mapped[str] = mapped_column(String(20))
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(60))

    provider: Mapped[Provider] = relationship(back_populates="numbers")
