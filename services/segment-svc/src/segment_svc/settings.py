from pydantic import Field

from contracts.codec import MESSAGE_BYTES, RECIPIENT_BYTES
from servicekit.settings import CommonSettings


class Settings(CommonSettings):
    http_port: int = 8081
    # Recipients per segment.evaluated message at most, and bytes: the largest message the
    # broker takes (its message.max.bytes, 1,048,588 by default; the default here leaves
    # room for framing and dead-letter headers, see contracts.codec.MESSAGE_BYTES). Small
    # contacts fill a batch by count (2,000 of ~400 bytes), large ones by bytes.
    evaluation_batch_size: int = Field(default=2000, ge=1)
    kafka_message_bytes: int = Field(default=MESSAGE_BYTES, ge=RECIPIENT_BYTES + 2_000)
    # Contacts per COPY and upsert statement while an import is read (up to three batches
    # are in memory: one read, two waiting); 10,000 was no faster and held 50 MB more.
    import_batch_size: int = 5000
