"""Routes of this resource (being written)."""

from fastapi import APIRouter

router = APIRouter()
