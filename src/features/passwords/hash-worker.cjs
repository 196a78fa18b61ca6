// One password-hashing thread (see hash-pool.ts). Plain CommonJS so that it loads the same way from src/ (tests)
// and from dist/ (production). Each job is one synchronous argon2 call: this thread has nothing else to do.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const os = require('node:os');
const argon2 = require(workerData.argon2Path);

// On Linux a thread's nice value is its own: hashing yields the CPU to the event loop's thread, and still
// uses every cycle the event loop leaves idle.
let niceness = 0;
try {
  os.setPriority(0, workerData.niceness);
  niceness = os.getPriority(0);
} catch {
  // Not permitted or not supported here: hash at normal priority.
}
parentPort.postMessage({ ready: true, niceness });

// Each answer says how long the job took here: the pool's estimate of a job's time must not include the time
// the answer then waits for the event loop.
parentPort.on('message', (job) => {
  const start = performance.now();
  try {
    const result = job.op === 'hash' ? argon2.hashSync(job.password, job.options) : argon2.verifySync(job.hash, job.password);
    parentPort.postMessage({ id: job.id, result, ms: performance.now() - start });
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error), ms: performance.now() - start });
  }
});
