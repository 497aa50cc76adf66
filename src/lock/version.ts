/*
 * PEP 440 version syntax: the VERSION_PATTERN of the `packaging` library, split into its parts so
 * each can be read on its own. Matching is case-insensitive.
 */
const EPOCH = String.raw`(?:[0-9]+!)?`; //                   2!
const RELEASE = String.raw`[0-9]+(?:\.[0-9]+)*`; //          1.26.4
const PRE = String.raw`(?:[-_.]?(?:alpha|a|beta|b|preview|pre|c|rc)[-_.]?[0-9]*)?`; // rc1, .beta.2
const POST = String.raw`(?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?`; // .post1, -1
const DEV = String.raw`(?:[-_.]?dev[-_.]?[0-9]*)?`; //       .dev0
const LOCAL = String.raw`(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?`; // +cpu, +ubuntu.1

const PEP440_VERSION = new RegExp(`^v?${EPOCH}${RELEASE}${PRE}${POST}${DEV}${LOCAL}$`, 'i');

export function isPep440Version(version: string): boolean {
  return PEP440_VERSION.test(version);
}
