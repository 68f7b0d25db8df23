// Deterministic rows: the work orders of Ferry's own benchmarks (`work_order` and `seed` in
// crates/ferry-cli/src/bench/server.rs), as PouchDB documents. Row n (1-based) is
//   _id        string   Ferry's benchmark object id for n: ObjectId::from_parts(1_800_000_000_000, n)
//                       in its 8-4-4-4-12 hex form, e.g. '01a3185c-5000-0000-0000-000000000001'
//   Number     integer  n
//   Title      string   'Work order <n>'
//   Status     string   'Open'
//   Priority   integer  1 + n % 5
//   Amount     string   '<n % 1000>.50' (Ferry sends decimals as exact strings)
//   DueDate    string   '2026-12-01T08:00:00Z'
//   Notes      string   'Notes for work order <n>'
//   Completed  boolean  n is even
// The same n always gives the same document, so every run and every peer sees the same rows.
'use strict';

// The time part of Ferry's benchmark object ids (unix ms 1_800_000_000_000), 12 hex digits.
const ID_TIME = (1_800_000_000_000).toString(16).padStart(12, '0');

function objectId(n) {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`bad row number ${n}`);
  const low = n.toString(16).padStart(20, '0');
  return `${ID_TIME.slice(0, 8)}-${ID_TIME.slice(8, 12)}-${low.slice(0, 4)}-${low.slice(4, 8)}-${low.slice(8)}`;
}

function workOrder(n) {
  return {
    _id: objectId(n),
    Number: n,
    Title: `Work order ${n}`,
    Status: 'Open',
    Priority: 1 + (n % 5),
    Amount: `${n % 1000}.50`,
    DueDate: '2026-12-01T08:00:00Z',
    Notes: `Notes for work order ${n}`,
    Completed: n % 2 === 0,
  };
}

// Rows first..first+count-1.
function workOrders(first, count) {
  const docs = new Array(count);
  for (let k = 0; k < count; k++) docs[k] = workOrder(first + k);
  return docs;
}

// Average bytes of JSON.stringify over rows 1..n (the document as generated, before PouchDB
// adds its `_rev`).
function averageJsonBytes(n) {
  let total = 0;
  for (let i = 1; i <= n; i++) total += Buffer.byteLength(JSON.stringify(workOrder(i)));
  return total / n;
}

module.exports = { objectId, workOrder, workOrders, averageJsonBytes };

if (require.main === module) {
  // usage: node rows.js [N]  — prints row 1 and the average JSON bytes per row over rows 1..N
  const n = parseInt(process.argv[2] || '100000', 10);
  console.log(JSON.stringify(workOrder(1)));
  console.log(`average JSON bytes per row over rows 1..${n}: ${averageJsonBytes(n).toFixed(1)}`);
}
