// SPDX-License-Identifier: MIT
// proper-lockfile (npm) on a lockfs mount (SPEC R7.5): it locks FILE by
// mkdir of FILE.lock and keeps that directory's mtime fresh with utimes,
// checking each time that stat reads back exactly the mtime it set.
//
// usage: NODE_PATH=DIR/node_modules node proper_lockfile.js MODE FILE
//   hold: lock FILE (stale 10 s, update 2 s); print "LOCKED <pid>", hold
//         until stdin ends, then release and print "RELEASED". Should the
//         lock be compromised, print "COMPROMISED <code> <message>", exit 3.
//   try:  lock FILE once: print "LOCKED <pid>" and release, or
//         "ERR <code>" and exit 1.
// realpath: false, as FILE itself need not exist (on lockfs a file is a lock).
'use strict';
const lockfile = require('proper-lockfile');

const [mode, file] = process.argv.slice(2);
const opts = { stale: 10000, update: 2000, realpath: false };

if (mode === 'hold') {
  opts.onCompromised = (err) => {
    console.log('COMPROMISED', err.code, JSON.stringify(err.message));
    process.exit(3);
  };
  lockfile.lock(file, opts).then((release) => {
    console.log('LOCKED', process.pid);
    process.stdin.resume();
    process.stdin.on('end', () => {
      release().then(() => {
        console.log('RELEASED');
        process.exit(0);
      }, (err) => {
        console.log('ERR', err.code);
        process.exit(1);
      });
    });
  }, (err) => {
    console.log('ERR', err.code);
    process.exit(1);
  });
} else if (mode === 'try') {
  lockfile.lock(file, opts).then((release) => {
    console.log('LOCKED', process.pid);
    return release();
  }).then(() => process.exit(0), (err) => {
    console.log('ERR', err.code);
    process.exit(1);
  });
} else {
  console.error('usage: proper_lockfile.js hold|try FILE');
  process.exit(2);
}
