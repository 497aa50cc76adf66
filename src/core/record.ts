/**
 * Parse a wheel's `*.dist-info/RECORD` (PEP 376, PEP 427, and the "Recording installed projects"
 * spec): one CSV row per installed file, `path,hash,size`. The hash is `sha256=<urlsafe base64,
 * no padding>`; RECORD lists itself with an empty hash and size. Paths are relative to
 * site-packages and may start with `..` for files installed elsewhere (scripts, headers, data);
 * they are kept as written so the caller decides what to do with them.
 *
 * The file comes from a package, so it is hostile: parsing never throws and never trusts a field.
 * Rows without a path are dropped; a hash or size that does not parse becomes null.
 */

export interface RecordEntry {
  /** As written in RECORD (posix separators in practice, possibly `..`-prefixed). */
  path: string;
  /** Lowercase hex sha256, or null when the row has no hash or one that is not a valid sha256. */
  sha256: string | null;
  /** Size in bytes, or null when absent or not a plain non-negative integer. */
  size: number | null;
}

export function parseRecord(text: string): RecordEntry[] {
  const entries: RecordEntry[] = [];
  for (const row of parseCsv(text)) {
    const [path = '', hash = '', size = ''] = row;
    if (path === '') continue;
    entries.push({ path, sha256: recordHashToHex(hash), size: parseSize(size) });
  }
  return entries;
}

const SHA256_B64 = /^[A-Za-z0-9_-]{43}=?$/;

/**
 * `sha256=<urlsafe base64>` to lowercase hex. Returns null for an empty field, another algorithm,
 * or anything that is not the canonical encoding of exactly 32 bytes. A trailing `=` pad is
 * tolerated because some writers emit it.
 */
export function recordHashToHex(h: string): string | null {
  const eq = h.indexOf('=');
  if (eq < 0 || h.slice(0, eq) !== 'sha256') return null;
  const encoded = h.slice(eq + 1);
  if (!SHA256_B64.test(encoded)) return null;
  const unpadded = encoded.replace(/=$/, '');
  const bytes = Buffer.from(unpadded, 'base64url');
  // Buffer decoding is lenient (it ignores stray low bits); insist on the canonical form.
  if (bytes.length !== 32 || bytes.toString('base64url') !== unpadded) return null;
  return bytes.toString('hex');
}

function parseSize(field: string): number | null {
  if (!/^[0-9]{1,15}$/.test(field)) return null;
  return Number(field);
}

/**
 * CSV as Python's `csv.reader` reads it with the default `excel` dialect, which is what pip and
 * wheel write RECORD with: `,` delimiter, `"` quotes, `""` for a literal quote, rows ended by
 * `\r\n`, `\n` or `\r`, and newlines allowed inside quoted fields. Like Python (non-strict), text
 * after a closing quote is appended to the field, a quote inside an unquoted field is literal,
 * and an unterminated quote runs to the end of the input. Blank lines yield no row.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false; // inside a quoted section
  let fieldStarted = false; // the current row has seen any character
  let i = 0;

  const endField = (): void => {
    row.push(field);
    field = '';
  };
  const endRow = (): void => {
    if (fieldStarted) {
      endField();
      rows.push(row);
    }
    row = [];
    fieldStarted = false;
  };

  while (i < text.length) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else {
        field += c;
      }
      i += 1;
      continue;
    }
    if (c === '"' && field === '') {
      // A quote opens a quoted section only at the start of a field. (After a closing quote the
      // next character is never a quote: `""` inside quotes is an escaped quote.)
      quoted = true;
      fieldStarted = true;
      i += 1;
      continue;
    }
    if (c === ',') {
      fieldStarted = true;
      endField();
      i += 1;
      continue;
    }
    if (c === '\r' || c === '\n') {
      endRow();
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      continue;
    }
    field += c;
    fieldStarted = true;
    i += 1;
  }
  endRow();
  return rows;
}
