-- Nothing reads the outbox by merchant: the fan-out reads its queue and joins events by id, and
-- deliveries join them the same way. The index cost one more B-tree insert per event (three per
-- table order placed and paid) for no reader.
DROP INDEX events_merchant;
