// Reads a wsproxy recording the way noVNC's playback page does: the file is
// run as a script (noVNC adds it with a <script> tag) that defines
// VNC_frame_data; entries are read up to 'EOF'; a frame's data starts after
// the second marker character and each character code is one byte.
// Prints one JSON line: [{fromClient, timestamp, hex}, ...].
// Usage: node record_reader.js FILE
'use strict';
const fs = require('fs');
const vm = require('vm');

const text = fs.readFileSync(process.argv[2], 'latin1');
const ctx = {};
vm.runInNewContext(text, ctx, { filename: process.argv[2] });
const frames = ctx.VNC_frame_data;
if (!Array.isArray(frames)) throw new Error('VNC_frame_data is not an array');
if (frames[frames.length - 1] !== 'EOF') throw new Error('last entry is not EOF');

const out = [];
for (const frame of frames) {
  if (frame === 'EOF') break;
  const marker = frame[0];
  if (marker !== '{' && marker !== '}') throw new Error('bad marker in ' + JSON.stringify(frame));
  // noVNC looks for '{' (its player skips client frames); this reader
  // uses the frame's own marker so client frames are checked too.
  const dataIdx = frame.indexOf(marker, 1) + 1;
  if (dataIdx === 0) throw new Error('no timestamp end in ' + JSON.stringify(frame));
  const timestamp = parseInt(frame.slice(1, dataIdx - 1), 10);
  const bytes = Buffer.alloc(frame.length - dataIdx);
  for (let j = 0; j < frame.length - dataIdx; j++) {
    const code = frame.charCodeAt(dataIdx + j);
    if (code > 255) throw new Error('character code ' + code + ' is not a byte');
    bytes[j] = code;
  }
  out.push({ fromClient: marker === '}', timestamp, hex: bytes.toString('hex') });
}
process.stdout.write(JSON.stringify(out) + '\n');
