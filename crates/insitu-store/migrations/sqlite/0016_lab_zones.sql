-- Labs: the datazone each runs in; for a lab that is a Slurm job, its job
-- id (how a restarted platform finds it again) and the address of the node
-- it runs on (where the proxy reaches it).
ALTER TABLE labs ADD COLUMN zone TEXT NOT NULL DEFAULT 'local';
ALTER TABLE labs ADD COLUMN job TEXT;
ALTER TABLE labs ADD COLUMN host TEXT;
