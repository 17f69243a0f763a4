export * from './stack.ts';
export * from './web-build.ts';
