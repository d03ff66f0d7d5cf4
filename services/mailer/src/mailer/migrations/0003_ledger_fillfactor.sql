-- Each send's row is inserted `sending` and updated with its outcome a moment later. On a
-- full page that update must go to another page, and into the primary key again; with
-- room left on each page it stays beside the row (a HOT update): 29% of them did so at
-- the default fillfactor of 100 (bench/campaign.py, 30,000 emails). Pages written from now on.
ALTER TABLE ledger SET (fillfactor = 70);
