-- Accounts reached through an OpenID provider: a provider's subject is one
-- account's, for good. An account's e-mail address (lower case), which a
-- provider's verified address may link to when the operator allows it.
CREATE TABLE oidc_identities (
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE INDEX oidc_identities_user ON oidc_identities(user_id);

CREATE TABLE user_emails (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT NOT NULL UNIQUE
);
