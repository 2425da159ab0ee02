// SPDX-License-Identifier: MIT
// The seed scenario (CRITICAL-005): a CLI's classic check-then-write lock,
// kept deliberately vulnerable: isLocked() then fs.writeFile() WITHOUT the
// 'wx' flag. On lockfs the write of a loser fails with EEXIST.
//
// usage: node seed_cli.js LOCKPATH [GO_FD]
//   GO_FD (optional): after the check passes, print "READY" and block until
//   that descriptor reaches EOF, so N processes can all pass isLocked() and
//   then write at the same instant (the race window, widened on purpose).
// prints "ACQUIRED <pid>" and holds until stdin closes, or "BUSY <code>".
'use strict';
const fs = require('fs');
const fsp = fs.promises;

const lockFilePath = process.argv[2];
const goFd = process.argv[3] !== undefined ? Number(process.argv[3]) : null;

async function fileExists(p) {
  try { await fsp.access(p); return true; } catch { return false; }
}

function isProcessRunning(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code !== 'ESRCH'; }
}

async function removeLock() {
  try { await fsp.unlink(lockFilePath); } catch { /* ignore */ }
}

async function isLocked() {
  try {
    if (!(await fileExists(lockFilePath))) return { locked: false };
    const content = await fsp.readFile(lockFilePath, 'utf-8');
    const lockInfo = JSON.parse(content);
    if (!isProcessRunning(lockInfo.pid)) {
      process.stderr.write(`STALE ${lockInfo.pid}\n`);
      await removeLock();
      return { locked: false };
    }
    const lockAge = Date.now() - new Date(lockInfo.created_at).getTime();
    if (lockAge > 60 * 60 * 1000) {
      process.stderr.write(`OLD ${lockInfo.pid}\n`);
      await removeLock();
      return { locked: false };
    }
    return { locked: true, lockInfo };
  } catch (error) {
    return { locked: false };
  }
}

function waitGo() {
  if (goFd === null) return;
  process.stdout.write('READY\n');
  const buf = Buffer.alloc(16);
  for (;;) {
    let n;
    try { n = fs.readSync(goFd, buf, 0, buf.length, null); } catch (e) {
      if (e.code === 'EAGAIN') continue;
      throw e;
    }
    if (n === 0) return;
  }
}

async function createLock(operation) {
  const lockCheck = await isLocked();                        // CHECK
  if (lockCheck.locked) {
    return { success: false, code: 'LOCKED', info: lockCheck.lockInfo };
  }
  waitGo();                                                  // the gap
  const lock = {
    pid: process.pid,
    created_at: new Date().toISOString(),
    operation,
    version: '1.4.2',
    cwd: process.cwd(),
  };
  try {
    await fsp.writeFile(lockFilePath, JSON.stringify(lock, null, 2), 'utf-8');  // USE
    return { success: true };
  } catch (error) {
    return { success: false, code: error.code || String(error) };
  }
}

createLock('apply').then((r) => {
  if (!r.success) {
    process.stdout.write(`BUSY ${r.code}\n`);
    process.exit(1);
  }
  process.stdout.write(`ACQUIRED ${process.pid}\n`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
});
