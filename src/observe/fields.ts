/** A field of an untyped record (a monitor event as the observation keeps it), when it has the type asked for. */
export const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);
export const num = (value: unknown): number | null => (typeof value === 'number' ? value : null);
