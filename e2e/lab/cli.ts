// `npm run lab -- up [--nodes N] [--cluster] | down | status`
//   --cluster: the cluster tier (kubelets, kube-proxy, controllers; e2e/cluster).

import { clusterUp } from '../cluster/cluster.ts';
import { labDown, labStatus, labUp } from './lab.ts';

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'up': {
      const i = rest.indexOf('--nodes');
      const nodes = i >= 0 ? Number(rest[i + 1]) : undefined;
      if (nodes !== undefined && !Number.isInteger(nodes)) throw new Error(`--nodes needs a whole number, got ${rest[i + 1]}`);
      const t0 = Date.now();
      const opts = nodes === undefined ? {} : { nodes };
      await (rest.includes('--cluster') ? clusterUp(opts) : labUp(opts));
      console.log(`lab up in ${Date.now() - t0} ms`);
      console.log(JSON.stringify(await labStatus(), null, 2));
      return 0;
    }
    case 'down':
      await labDown();
      console.log('lab down');
      return 0;
    case 'status':
      console.log(JSON.stringify(await labStatus(), null, 2));
      return 0;
    default:
      console.error('usage: npm run lab -- up [--nodes N] [--cluster] | down | status');
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack ?? err.message : err);
    process.exit(1);
  },
);
