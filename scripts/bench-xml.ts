// node scripts/bench-xml.ts: the median time of parseXml (src/xml/document.ts) over the example image's
// applicationHost.config and the bundled catalog, warm (after a few unmeasured parses). Wall time and this
// process's CPU time are both printed: on a shared machine the CPU time is the steadier of the two.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parseXml, type ParseXmlOptions } from '../src/xml/document.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.env['BENCH_RUNS'] ?? 20);
const warmup = 5;

const files: { label: string; file: string; options: ParseXmlOptions }[] = [
  {
    label: 'applicationHost.config (e19-cu12-oct22su)',
    file: path.join(root, 'examples', 'e19-cu12-oct22su', 'fs', 'C', 'Windows', 'System32', 'inetsrv', 'config', 'applicationHost.config'),
    options: { kind: 'configuration file', maxBytes: 32 * 1024 * 1024, allowCdata: true },
  },
  {
    label: 'mitigations/catalog.xml',
    file: path.join(root, 'mitigations', 'catalog.xml'),
    options: { kind: 'catalog', maxBytes: 32 * 1024 * 1024, allowCdata: false },
  },
];

console.log(`parseXml benchmark, Node ${process.version}, median of ${runs} warm parses`);
for (const { label, file, options } of files) {
  const text = readFileSync(file, 'utf8');
  for (let i = 0; i < warmup; i++) parseXml(text, file, options);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    parseXml(text, file, options);
    wall.push(Number(process.hrtime.bigint() - start) / 1e6);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
  }
  const kb = (Buffer.byteLength(text, 'utf8') / 1024).toFixed(0);
  console.log(`${label.padEnd(44)} ${kb.padStart(5)} KB  wall ${summary(wall)}  cpu ${summary(cpu)}`);
}

function summary(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? 0;
  return `median ${median.toFixed(1).padStart(6)} ms (min ${sorted[0]?.toFixed(1)}, max ${sorted[sorted.length - 1]?.toFixed(1)})`;
}
