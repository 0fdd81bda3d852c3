-- A batch may start from the balances its node kept after its last commit, instead of reading
-- (and locking) them again. Its statement then writes each balance only if the row still holds
-- the balance the batch started from; where another node has moved the account since, this
-- function fails the statement, so that nothing of the batch is written, with the error code
-- of a serialization failure: the node runs the batch again from locked reads.
CREATE FUNCTION o2o_account_moved(account text) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION 'ledger account % moved since this node last wrote it', account
        USING ERRCODE = 'serialization_failure';
END
$$;

-- The same statement ends by checking that every balance it changes found its row: a batch
-- never stores transfers whose account it did not update.
CREATE FUNCTION o2o_accounts_written(written bigint, sent bigint) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF written <> sent THEN
        RAISE EXCEPTION 'a batch changed % ledger accounts but found % of them', sent, written;
    END IF;
    RETURN 1;
END
$$;
