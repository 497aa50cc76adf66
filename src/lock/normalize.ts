/** PEP 508 project name: ASCII letters and digits, with `.`, `_` and `-` allowed inside but not at either end. */
const PROJECT_NAME = /^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$/i;

export function isValidProjectName(name: string): boolean {
  return PROJECT_NAME.test(name);
}

/** PEP 503 normalisation: lowercase, and every run of `-`, `_` and `.` becomes one `-`. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}
