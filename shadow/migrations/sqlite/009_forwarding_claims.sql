-- When a forwarding record was claimed (ClaimApproved): a record still forwarding long
-- after its claim (the forwarder crashed or hung) is claimed again by the next identical
-- retry instead of staying stuck. NULL: claimed before this column existed.
ALTER TABLE records ADD COLUMN claimed_at TEXT;
