// The base of the contracts package: the message envelope, `defineMessage`, the registry and shared scalar schemas.
// Each domain has its own entry point (listed in package.json `exports`): `@exchange/contracts/auth`, `/markets`,
// `/orders`, `/trading`, `/wallet`.
export * from './envelope.ts';
