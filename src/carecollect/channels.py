"""The ways carecollect reaches a patient."""

from __future__ import annotations

import enum

__all__ = ["Channel"]


class Channel(enum.Enum):
    """A communication channel."""

    #: A printed letter sent by post.
    LETTER = "letter"
    #: An e-mail to the patient's address.
    EMAIL = "email"
    #: A text message to the patient's mobile number.
    SMS = "sms"
    #: A telephone call by staff or an automated system (a voicemail is an outcome of a call).
    PHONE = "phone"
    #: A notification in the patient portal.
    PORTAL = "portal"

    @property
    def is_electronic(self) -> bool:
        """E-mail, SMS and portal: messages that must carry an opt-out."""
        return self in (Channel.EMAIL, Channel.SMS, Channel.PORTAL)
