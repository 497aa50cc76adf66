/**
 * A tar-stream header as it really arrives from a hostile archive: its shipped types promise every
 * field, but the decoder yields null for an unknown typeflag or an empty linkname.
 */
export interface TarHeader {
  name: string;
  type?: string | null;
  size?: number | null;
  mode?: number | null;
  linkname?: string | null;
}
