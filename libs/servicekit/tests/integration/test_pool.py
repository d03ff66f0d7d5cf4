"""The pool gives connections back without asyncpg's reset query (database._keep_session):
what that query would have cleaned must not reach the next user."""

from servicekit.database import create_pool


async def test_a_connection_given_back_mid_transaction_is_rolled_back_and_keeps_its_schema(database_url):
    pool = await create_pool(database_url, "pool_test", size=1)
    try:
        await pool.execute("CREATE SCHEMA IF NOT EXISTS pool_test")
        await pool.execute("CREATE TABLE IF NOT EXISTS pool_test.kept (n int)")
        connection = await pool.acquire()
        await connection.execute("BEGIN")
        await connection.execute("INSERT INTO kept VALUES (1)")
        await connection.fetchval("SELECT pg_advisory_xact_lock(42)")
        await pool.release(connection)  # a handler that raised mid-transaction

        async with pool.acquire() as again:  # the pool's only connection
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT count(*) FROM kept") == 0, "the open transaction was rolled back"
            assert await again.fetchval("SELECT pg_try_advisory_xact_lock(42)"), "its lock went with it"
            assert await again.fetchval("SHOW search_path") == "pool_test,public"
    finally:
        await pool.execute("DROP SCHEMA IF EXISTS pool_test CASCADE")
        await pool.close()
