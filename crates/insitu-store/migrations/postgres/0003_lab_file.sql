-- Labs: the file a lab was launched on (a path inside one of its volumes).
ALTER TABLE labs ADD COLUMN file TEXT;
