-- Runs: the datazone each executes in (its tool jobs go to that zone's
-- Slurm cluster, or run on this machine for `local`).
ALTER TABLE runs ADD COLUMN zone TEXT NOT NULL DEFAULT 'local';
