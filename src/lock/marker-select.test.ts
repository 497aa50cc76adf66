import { describe, expect, it } from 'vitest';

import { NOT_SELECTED, selectedMarker, type Selection } from './marker-select.js';
import { LineProblem } from './problem.js';

const selection = (extras: string[], dependencyGroups: string[]): Selection => ({ extras: new Set(extras), dependencyGroups: new Set(dependencyGroups) });
const DEFAULT = selection([], ['default']);
const WHERE = "package 'foo' 1.0";

function problemOf(marker: string, chosen = DEFAULT): string {
  try {
    selectedMarker(marker, chosen, WHERE);
  } catch (error: unknown) {
    if (error instanceof LineProblem) return `${error.code}: ${error.message}`;
    throw error;
  }
  throw new Error('expected selectedMarker to throw');
}

describe('selectedMarker', () => {
  it('gives no marker for none, and an ordinary marker rendered canonically from its parse, parentheses kept', () => {
    expect(selectedMarker(undefined, DEFAULT, WHERE)).toBeNull();
    expect(selectedMarker(`(python_version<"3.12")  and os_name == 'posix'`, DEFAULT, WHERE)).toBe(`( python_version < "3.12" ) and os_name == "posix"`);
  });

  it('decides extras and groups by the selection, compared by normalised name', () => {
    const withSocks = selection(['socks'], ['dev']);
    expect(selectedMarker(`"Socks" in extras`, withSocks, WHERE)).toBeNull();
    expect(selectedMarker(`"socks" not in extras`, withSocks, WHERE)).toBe(NOT_SELECTED);
    expect(selectedMarker(`"security" in extras`, withSocks, WHERE)).toBe(NOT_SELECTED);
    expect(selectedMarker(`'DEV' in dependency_groups and "socks" in extras`, withSocks, WHERE)).toBeNull();
    expect(selectedMarker(`"default" in dependency_groups`, withSocks, WHERE)).toBe(NOT_SELECTED);
  });

  it('leaves what the selection does not decide, each comparison rendered canonically, with the parentheses pip needs', () => {
    expect(selectedMarker(`os_name=='nt' and ("socks" in extras or python_version < "3.9" or sys_platform == "linux")`, DEFAULT, WHERE)).toBe(
      `os_name == "nt" and (python_version < "3.9" or sys_platform == "linux")`,
    );
    expect(selectedMarker(`((os_name == "nt" or os_name == "posix")) and ("default" in dependency_groups)`, DEFAULT, WHERE)).toBe(
      `os_name == "nt" or os_name == "posix"`,
    );
    expect(selectedMarker(`os_name == "nt" and (python_version < "3.9" and "default" in dependency_groups)`, DEFAULT, WHERE)).toBe(
      `os_name == "nt" and python_version < "3.9"`,
    );
  });

  it('refuses an empty marker, a syntax error with the requirements parser message, and any other test of the two variables', () => {
    expect(problemOf('  ')).toBe(`lock.invalid: ${WHERE} has an empty environment marker`);
    expect(problemOf(`"dev" in dependency_groups and`)).toBe(`lock.invalid: invalid environment marker '"dev" in dependency_groups and': it ends too early`);
    expect(problemOf(`dependency_groups == "dev"`)).toBe(
      `lock.invalid: ${WHERE} has the environment marker 'dependency_groups == "dev"'; PEP 751 markers test dependency_groups only as "'name' in dependency_groups"`,
    );
    // The first bad comparison is the one named, even where an earlier one already decides the marker.
    expect(problemOf(`"x" in extras or extras in dependency_groups or "y" > dependency_groups`, selection(['x'], []))).toBe(
      `lock.invalid: ${WHERE} has the environment marker '"x" in extras or extras in dependency_groups or "y" > dependency_groups'; PEP 751 markers test extras only as "'name' in extras"`,
    );
    expect(problemOf(`"dev" in dependency_groups and "y" > dependency_groups`)).toBe(
      `lock.invalid: ${WHERE} has the environment marker '"dev" in dependency_groups and "y" > dependency_groups'; PEP 751 markers test dependency_groups only as "'name' in dependency_groups"`,
    );
  });
});
