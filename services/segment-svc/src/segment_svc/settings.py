from servicekit.settings import CommonSettings


class Settings(CommonSettings):
    http_port: int = 8081
    # Recipients per segment.evaluated message: ~400 KB, under Kafka's 1 MB message limit.
    evaluation_batch_size: int = 2000
    # Contacts per COPY and upsert statement while an import is read (up to three batches
    # are in memory: one read, two waiting); 10,000 was no faster and held 50 MB more.
    import_batch_size: int = 5000
