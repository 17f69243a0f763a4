// The base of the contracts package: the message envelope, `defineMessage`, the registry and shared scalar schemas.
// Each domain has its own entry point owned by its service: `@exchange/contracts/wallet`, `/orders`, `/engine`, `/auth`.
export * from './envelope.ts';
