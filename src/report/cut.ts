/**
 * Cutting package-controlled text to a length. Lengths are UTF-16 code units (what `.length`
 * counts and what V8's string limit is made of), and a cut never splits a surrogate pair: half a
 * pair would serialise as a lone `\udXXX` and print as U+FFFD.
 */

const isHigh = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLow = (code: number) => code >= 0xdc00 && code <= 0xdfff;

/** The first `max` code units of `text`, one fewer if the last would be the first half of a pair. */
export function headUnits(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max);
  if (end > 0 && isHigh(text.charCodeAt(end - 1)) && isLow(text.charCodeAt(end))) end -= 1;
  return text.slice(0, end);
}

/** The last `max` code units of `text`, one fewer if the first would be the second half of a pair. */
export function tailUnits(text: string, max: number): string {
  if (text.length <= max) return text;
  let start = text.length - Math.max(0, max);
  if (start < text.length && isLow(text.charCodeAt(start)) && isHigh(text.charCodeAt(start - 1))) start += 1;
  return text.slice(start);
}

/** The marker that replaces what was cut. Its length is 10 plus the digits of `dropped`. */
export const cutMarker = (dropped: number) => `…[+${dropped} chars]`;

/**
 * `text` if it fits in `max` code units; otherwise its head and a `…[+N chars]` marker, together at
 * most `max` long (the marker alone when `max` is shorter than the marker).
 */
export function cutHead(text: string, max: number): string {
  if (text.length <= max) return text;
  // The marker for `text.length` dropped chars is the longest this cut can need.
  const head = headUnits(text, max - cutMarker(text.length).length);
  return head + cutMarker(text.length - head.length);
}

/** Like `cutHead`, but keeps the end: pip prints the error that matters last. */
export function cutTail(text: string, max: number): string {
  if (text.length <= max) return text;
  const tail = tailUnits(text, max - cutMarker(text.length).length);
  return cutMarker(text.length - tail.length) + tail;
}
