-- A consumer's top-up can be refunded back to where it came from, in part or whole, as real
-- providers refund a charge (WeChat Pay's refund, Alipay's trade.refund) rather than pay out
-- afresh. The refund is a wallet movement going out (`withdrawal`, holding its money first) that
-- names the top-up it refunds (`refund_of`); the top-up keeps how much of it is refunded or being
-- refunded (`amount_refunded`), so that no more than it brought in ever goes back. The sandbox
-- bank's statement names the charge a refund refunds (by the bank's own id for it).
ALTER TABLE wallet_movements ADD COLUMN refund_of TEXT;
ALTER TABLE wallet_movements ADD COLUMN amount_refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sandbox_charges ADD COLUMN refund_of TEXT;
CREATE INDEX sandbox_charges_refunds ON sandbox_charges (refund_of) WHERE refund_of IS NOT NULL;
