// amqplib (npm), a client nobody here wrote, runs the work-queue features on one broker and
// prints what it saw, one line per feature: tests/amqplib_client.rs compares the lines with
// what RabbitMQ gives. Usage: node features.js AMQP_URL
const amqp = require('amqplib');
const url = process.argv[2];
// Waits until f gives something (at most ms), letting the event loop deliver between tries.
const waitFor = async (f, ms = 10000) => {
  const t = Date.now();
  while (Date.now() - t < ms) {
    const v = await f();
    if (v) return v;
    await new Promise(r => setImmediate(r));
  }
  return null;
};
(async () => {
  const out = [];
  const c = await amqp.connect(url);
  const ch = await c.createConfirmChannel();
  const id = Math.random().toString(16).slice(2, 8);
  // 1. poison message on a quorum queue with a delivery limit and a DLQ
  const q = 'js.poison.' + id, dlq = 'js.dlq.' + id;
  await ch.assertQueue(dlq, { durable: false });
  await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 2, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
  await new Promise((res, rej) => ch.sendToQueue(q, Buffer.from('poison'), {}, e => e ? rej(e) : res()));
  const ch2 = await c.createChannel(); await ch2.prefetch(1);
  let deliveries = 0;
  await ch2.consume(q, m => { if (!m) return; deliveries++; ch2.nack(m, false, true); });
  const dead = await waitFor(() => ch.get(dlq, { noAck: true }));
  out.push(`poison: deliveries=${deliveries} dead=${dead && dead.content} reason=${dead && dead.properties.headers['x-death'][0].reason}`);
  // 2. consumer priorities
  const pq = 'js.prio.' + id; await ch.assertQueue(pq, { durable: false, autoDelete: false });
  const got = [];
  const a = await c.createChannel(); await a.prefetch(1);
  const b = await c.createChannel(); await b.prefetch(1);
  await a.consume(pq, m => m && got.push('low:' + m.content), { noAck: true });
  await b.consume(pq, m => m && got.push('high:' + m.content), { noAck: true, priority: 10 });
  for (const n of ['1', '2', '3']) await new Promise((res, rej) => ch.sendToQueue(pq, Buffer.from(n), {}, e => e ? rej(e) : res()));
  await waitFor(async () => got.length >= 3);
  out.push('priorities: ' + got.join(' '));
  // 3. capped queue, reject-publish
  const cq = 'js.cap.' + id; await ch.assertQueue(cq, { durable: false, arguments: { 'x-max-length': 2, 'x-overflow': 'reject-publish' } });
  const acks = [];
  for (const n of ['1', '2', '3']) acks.push(await new Promise(res => ch.sendToQueue(cq, Buffer.from(n), {}, e => res(e ? 'nack' : 'ack'))));
  out.push('reject-publish: ' + acks.join(' '));
  // 4. per-message TTL dead-lettered as expired
  const tq = 'js.ttl.' + id, tdl = 'js.ttldl.' + id;
  await ch.assertQueue(tdl, { durable: false });
  await ch.assertQueue(tq, { durable: false, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': tdl } });
  await new Promise((res, rej) => ch.sendToQueue(tq, Buffer.from('stale'), { expiration: '50' }, e => e ? rej(e) : res()));
  const exp = await waitFor(() => ch.get(tdl, { noAck: true }));
  out.push(`ttl: ${exp && exp.content} reason=${exp && exp.properties.headers['x-death'][0].reason}`);
  // 5. single active consumer
  const sq = 'js.sac.' + id; await ch.assertQueue(sq, { durable: false, arguments: { 'x-single-active-consumer': true } });
  const sg = [];
  const s1 = await c.createChannel(), s2 = await c.createChannel();
  await s1.consume(sq, m => m && sg.push('first:' + m.content), { noAck: true });
  await s2.consume(sq, m => m && sg.push('second:' + m.content), { noAck: true });
  for (const n of ['1', '2']) await new Promise((res, rej) => ch.sendToQueue(sq, Buffer.from(n), {}, e => e ? rej(e) : res()));
  await waitFor(async () => sg.length >= 2);
  await s1.close();
  await new Promise((res, rej) => ch.sendToQueue(sq, Buffer.from('3'), {}, e => e ? rej(e) : res()));
  await waitFor(async () => sg.length >= 3);
  out.push('single-active: ' + sg.join(' '));
  // 6. invalid expiration
  try { const x = await c.createConfirmChannel(); x.on('error', () => {}); await new Promise((res, rej) => x.sendToQueue(tq, Buffer.from('x'), { expiration: 'soon' }, e => e ? rej(e) : res())); await x.close(); out.push('bad expiration: accepted'); }
  catch (e) { out.push('bad expiration: ' + e.message.split('\n')[0].replace(/"/g, '')); }
  console.log(out.join('\n'));
  for (const n of [q, dlq, pq, cq, tq, tdl, sq]) await ch.deleteQueue(n);
  await c.close();
})().catch(e => { console.error('FAILED', e.message); process.exit(1); });
