// React reports markup that a browser re-parents (a <div> inside a <p>, a <tr> outside a <tbody>, …) only as a
// console error in development; the browser then shows something other than the component tree. In the component
// tests (jsdom) such a report fails the test that rendered it. Other test files (no DOM) are left alone.
import { format } from 'node:util';

const NESTING = /cannot be a (descendant|child) of|cannot contain a nested|cannot appear as a child of/;

if (typeof document !== 'undefined') {
  let reports: string[] = [];
  const original = console.error.bind(console);
  console.error = (...args: unknown[]) => {
    const text = format(...args);
    if (NESTING.test(text)) reports.push(text.split('\n')[0]!);
    original(...args);
  };
  afterEach(() => {
    const found = reports;
    reports = [];
    expect({ invalidDomNesting: found }).toEqual({ invalidDomNesting: [] });
  });
}
