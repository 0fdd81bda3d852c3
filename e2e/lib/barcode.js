// A printed EAN-13 barcode as a PNG, drawn here so that a test can "photograph" a product's label
// (the server reads it with its own decoder). Grey-scale, three pixels a module, with the quiet
// zone the standard asks for.
import { deflateSync } from 'node:zlib';

const L = ['0001101', '0011001', '0010011', '0111101', '0100011', '0110001', '0101111', '0111011', '0110111', '0001011'];
const G = ['0100111', '0110011', '0011011', '0100001', '0011101', '0111001', '0000101', '0010001', '0001001', '0010111'];
const R = ['1110010', '1100110', '1101100', '1000010', '1011100', '1001110', '1010000', '1000100', '1001000', '1110100'];
const PARITY = ['LLLLLL', 'LLGLGG', 'LLGGLG', 'LLGGGL', 'LGLLGG', 'LGGLLG', 'LGGGLL', 'LGLGLG', 'LGLGGL', 'LGGLGL'];

/** The 95 modules (1 = bar) of a 13-digit EAN-13 code. */
export function ean13Modules(digits) {
  if (!/^\d{13}$/.test(digits)) throw new Error(`not 13 digits: ${digits}`);
  const d = [...digits].map(Number);
  const parity = PARITY[d[0]];
  let bits = '101';
  for (let i = 1; i <= 6; i++) bits += (parity[i - 1] === 'L' ? L : G)[d[i]];
  bits += '01010';
  for (let i = 7; i <= 12; i++) bits += R[d[i]];
  return bits + '101';
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A grey-scale PNG of `width` × `height` whose pixel (x, y) is `dark(x, y) ? black : white`. */
export function png(width, height, dark) {
  const rows = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) {
    rows[y * (width + 1)] = 0; // filter: none
    for (let x = 0; x < width; x++) rows[y * (width + 1) + 1 + x] = dark(x, y) ? 0 : 255;
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // grey-scale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A photo of a label with this EAN-13 barcode on it. */
export function ean13Png(digits, { module = 3, height = 120 } = {}) {
  const bits = ean13Modules(digits);
  const quiet = 11 * module;
  const width = bits.length * module + 2 * quiet;
  const margin = 20;
  return png(width, height + 2 * margin, (x, y) => {
    if (y < margin || y >= height + margin) return false;
    const m = Math.floor((x - quiet) / module);
    return m >= 0 && m < bits.length && bits[m] === '1';
  });
}

/** A photo with no barcode in it. */
export function blankPng(width = 240, height = 120) {
  return png(width, height, () => false);
}
