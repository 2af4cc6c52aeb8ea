// Which addresses of one range are taken, kept as merged runs in a treap keyed by the
// run's first address. Memory grows with the number of runs (at most the number of
// taken addresses), never with the size of the range, and every operation is
// O(log runs): an IPv6 /48 costs what a /29 costs.

interface Run {
  lo: bigint;
  hi: bigint;
  readonly priority: number;
  left: Run | undefined;
  right: Run | undefined;
}

export class Occupancy {
  readonly first: bigint;
  readonly last: bigint;
  #root: Run | undefined;
  #used = 0n;
  #runs = 0;

  constructor(first: bigint, last: bigint) {
    this.first = first;
    this.last = last;
  }

  /** Number of taken addresses. */
  get used(): bigint {
    return this.#used;
  }

  /** Number of merged runs, i.e. what the memory use grows with. */
  get runCount(): number {
    return this.#runs;
  }

  has(value: bigint): boolean {
    const run = floor(this.#root, value);
    return run !== undefined && value <= run.hi;
  }

  /** The lowest free address, or undefined when the range is full. */
  firstFree(): bigint | undefined {
    let run = this.#root;
    if (run === undefined) return this.first;
    while (run.left !== undefined) run = run.left;
    if (run.lo > this.first) return this.first;
    // Runs are merged, so the address after the lowest run is free.
    return run.hi < this.last ? run.hi + 1n : undefined;
  }

  take(value: bigint): void {
    if (value < this.first || value > this.last) throw new RangeError(`${value} is outside the range`);
    const before = floor(this.#root, value);
    if (before !== undefined && value <= before.hi) throw new RangeError(`${value} is already taken`);
    const after = exact(this.#root, value + 1n);
    if (before !== undefined && before.hi + 1n === value) {
      if (after === undefined) {
        before.hi = value;
      } else {
        before.hi = after.hi;
        this.#root = remove(this.#root, after.lo);
        this.#runs--;
      }
    } else if (after !== undefined) {
      // Lowering the key keeps the order: nothing lies between `value` and `after.lo`.
      after.lo = value;
    } else {
      this.#root = insert(this.#root, { lo: value, hi: value, priority: nextPriority(), left: undefined, right: undefined });
      this.#runs++;
    }
    this.#used++;
  }

  free(value: bigint): void {
    const run = floor(this.#root, value);
    if (run === undefined || value > run.hi) throw new RangeError(`${value} is not taken`);
    if (run.lo === run.hi) {
      this.#root = remove(this.#root, run.lo);
      this.#runs--;
    } else if (value === run.lo) {
      run.lo = value + 1n;
    } else if (value === run.hi) {
      run.hi = value - 1n;
    } else {
      const hi = run.hi;
      run.hi = value - 1n;
      this.#root = insert(this.#root, { lo: value + 1n, hi, priority: nextPriority(), left: undefined, right: undefined });
      this.#runs++;
    }
    this.#used--;
  }

  /** The taken runs in address order, as inclusive `[lo, hi]` pairs. */
  *runs(): Generator<readonly [bigint, bigint]> {
    const stack: Run[] = [];
    let node = this.#root;
    while (node !== undefined || stack.length > 0) {
      while (node !== undefined) {
        stack.push(node);
        node = node.left;
      }
      const top = stack.pop() as Run;
      yield [top.lo, top.hi];
      node = top.right;
    }
  }
}

/** The run with the greatest start ≤ value. */
function floor(root: Run | undefined, value: bigint): Run | undefined {
  let best: Run | undefined;
  let node = root;
  while (node !== undefined) {
    if (node.lo <= value) {
      best = node;
      node = node.right;
    } else {
      node = node.left;
    }
  }
  return best;
}

function exact(root: Run | undefined, lo: bigint): Run | undefined {
  let node = root;
  while (node !== undefined && node.lo !== lo) node = lo < node.lo ? node.left : node.right;
  return node;
}

function insert(node: Run | undefined, run: Run): Run {
  if (node === undefined) return run;
  if (run.lo < node.lo) {
    node.left = insert(node.left, run);
    if (node.left.priority > node.priority) return rotateRight(node, node.left);
  } else {
    node.right = insert(node.right, run);
    if (node.right.priority > node.priority) return rotateLeft(node, node.right);
  }
  return node;
}

function remove(node: Run | undefined, lo: bigint): Run | undefined {
  if (node === undefined) return undefined;
  if (lo < node.lo) node.left = remove(node.left, lo);
  else if (lo > node.lo) node.right = remove(node.right, lo);
  else return join(node.left, node.right);
  return node;
}

/** Joins two treaps whose keys are all smaller on the left. */
function join(left: Run | undefined, right: Run | undefined): Run | undefined {
  if (left === undefined) return right;
  if (right === undefined) return left;
  if (left.priority > right.priority) {
    left.right = join(left.right, right);
    return left;
  }
  right.left = join(left, right.left);
  return right;
}

function rotateRight(node: Run, child: Run): Run {
  node.left = child.right;
  child.right = node;
  return child;
}

function rotateLeft(node: Run, child: Run): Run {
  node.right = child.left;
  child.left = node;
  return child;
}

// Treap priorities need only be well spread, not unpredictable; a fixed-seed
// xorshift keeps runs reproducible.
let seed = 0x2545f491;
function nextPriority(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}
