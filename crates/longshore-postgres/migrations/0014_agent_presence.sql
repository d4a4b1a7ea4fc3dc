-- What a connected agent is, beside what every worker node says of itself:
-- the pool it serves and the labels it offers. Written by the agent's
-- gateway with its presence (NULL and NULL for an inline worker node), read
-- by `longshore agents list`, `GET /api/v1/agents` and the workers page,
-- whichever node of the cluster the agent is connected to.

ALTER TABLE longshore_workers ADD COLUMN pool text, ADD COLUMN labels text[];
