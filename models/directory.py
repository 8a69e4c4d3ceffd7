"""The CNRM directory: service categories, regions, and the providers that serve them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

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


class ProviderNumber(Base):
    """A focal point's SMS number; replies are recognised by its keyed hash."""

    __tablename__ = "provider_number"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("provider.id", ondelete="CASCADE"), index=True)
    phone_e164: Mapped[str] = mapped_column(String(20))
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(60))

    provider: Mapped[Provider] = relationship(back_populates="numbers")


def load_directory(
    session: Session, data: dict, hash_phone: Callable[[str], tuple[str, str]]
) -> dict[str, int]:
    """Create or update categories, regions and providers from seed data; safe to run again.

    `hash_phone` turns a typed number into (E.164, keyed hash).
    """
    for code, (name, sms_label, position) in data["categories"].items():
        session.merge(Category(code=code, name=name, sms_label=sms_label, position=position))
    for code, (name, part_of) in data["regions"].items():
        session.merge(Region(code=code, name=name, part_of=part_of))
    session.flush()
    for item in data["providers"]:
        provider = session.scalar(select(Provider).where(Provider.slug == item["slug"])) or Provider(
            slug=item["slug"]
        )
        provider.name, provider.kind = item["name"], item["kind"]
        provider.national = bool(item.get("national", False))
        provider.daily_capacity = int(item.get("daily_capacity", 10))
        provider.language = item.get("language", "fr")
        provider.categories = [session.get(Category, c) for c in item["categories"]]
        provider.regions = [session.get(Region, r) for r in item.get("regions", [])]
        wanted = [hash_phone(raw) for raw in item["numbers"]]
        have = {n.phone_hash for n in provider.numbers}
        provider.numbers = [n for n in provider.numbers if n.phone_hash in {h for _, h in wanted}]
        provider.numbers += [
            ProviderNumber(phone_e164=e164, phone_hash=h) for e164, h in wanted if h not in have
        ]
        session.add(provider)
    session.flush()
    return {
        "categories": len(data["categories"]),
        "regions": len(data["regions"]),
        "providers": len(data["providers"]),
    }
