"""``carecollect outbox list|show``: read the file outbox's spool back for inspection.

The spool (``layout = "spool"`` of the ``outbox`` channel) holds a run's messages in one file per
batch; these commands list its messages and print one, each message id once (a message handed
over again after a crash is in two batches). Nothing heavy is imported before a command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["outbox"]


@click.group()
def outbox() -> None:
    """Read the file outbox's spool (layout = "spool")."""


@outbox.command("list")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def list_messages(folder: Path) -> None:
    """List the spooled messages in FOLDER (the outbox's folder): id, channel, batch."""
    from ..plugins.builtin.outbox import spooled_messages

    count = 0
    for message in spooled_messages(folder):
        click.echo(f"{message.id}\t{message.channel.value}\t{message.batch}")
        count += 1
    click.echo(f"{count} message(s)", err=True)


@outbox.command("show")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("message_id")
def show_message(folder: Path, message_id: str) -> None:
    """Print the message MESSAGE_ID as the files layout would write it (an e-mail's .eml, else text)."""
    from ..errors import ValidationError
    from ..plugins.builtin.outbox import spooled_message

    try:
        message = spooled_message(folder, message_id)
    except ValidationError as exc:
        raise click.ClickException(f"{message_id}: {exc.problem}") from None
    sys.stdout.buffer.write(message.content)
    sys.stdout.flush()
