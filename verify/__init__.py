"""`make verify`: check a deployed stack end to end with the operator's own identity.

1. Read the stack outputs (`pulumi stack output --json`, or a file).
2. For each function app: get the operator's own Entra token for the stack's reader API (never
   stored; no function key, no `listKeys`), call `/api/read` with it for the sample present in
   both clouds, and compare what both clouds answered with the repository's sample files; then
   check that the app answers 401 to no token and to the operator's token for another audience.
3. Check two refusals: Entra refuses the operator a token for the federation audience (the
   operator is not assigned the app role: "assignment required" works), and AWS STS refuses, as
   `InvalidIdentityToken`, a token with the stack's issuer, audience and a trusted `sub` that the
   check signed with a key it made and threw away (the OIDC provider checks signatures against
   Entra's keys). No live token goes to STS: the one sent is worthless by construction.
4. Read the IAM role with the operator's AWS sign-in (`iam:GetRole`) and check that its trust
   policy pins `aud` to the audience and `sub` to exactly the stack's trusted identities.

Cloud endpoints come from the standard places, so the same code checks the local cloud: the
azure-identity environment (`DefaultAzureCredential`), `AWS_ENDPOINT_URL_STS`,
`REQUESTS_CA_BUNDLE`, `AWS_CA_BUNDLE`, `AWS_ENDPOINT_URL_IAM` and the AWS credential chain. No
token or key is ever printed.
"""
