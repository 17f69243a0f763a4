export { AT, generateCommands, orderId, userId, type GenerateOptions } from './commands.ts';
export { canonical, referenceRun, timeless, type ReferenceRun } from './reference.ts';
