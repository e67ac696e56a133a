// The service map: nodes are workloads (or pods without one) grouped in
// their namespace, and reserved entities (world, host); an edge is a
// source, destination, port and verdict, coloured by verdict, counting its
// flows. Flows arrive as server-sent events from the relay (/api/flows).
import cytoscape from 'cytoscape';

const colours = { FORWARDED: '#2e7d32', DROPPED: '#c62828', REDIRECTED: '#1565c0' };

const cy = cytoscape({
  container: document.getElementById('map'),
  wheelSensitivity: 0.3,
  style: [
    { selector: 'node', style: { label: 'data(label)', 'text-valign': 'bottom', 'font-size': 11, 'background-color': '#607d8b' } },
    { selector: 'node.service', style: { shape: 'hexagon', 'background-color': '#6a1b9a' } },
    { selector: 'node.reserved', style: { shape: 'round-rectangle', 'background-color': '#9e9e9e' } },
    { selector: 'node.namespace', style: { 'text-valign': 'top', 'background-opacity': 0.06, 'border-width': 1, 'border-color': '#90a4ae', shape: 'round-rectangle' } },
    { selector: 'edge', style: { width: 2, 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', label: 'data(label)', 'font-size': 9, 'text-rotation': 'autorotate' } },
    ...Object.entries(colours).map(([v, c]) => ({ selector: `edge.${v}`, style: { 'line-color': c, 'target-arrow-color': c, color: c } })),
    { selector: 'edge.DROPPED', style: { 'line-style': 'dashed' } },
    { selector: 'edge.quiet', style: { label: '' } },
    { selector: 'edge.quiet.DROPPED', style: { label: 'data(label)' } },
    { selector: 'edge.backs', style: { 'line-color': '#9e9e9e', 'target-arrow-color': '#9e9e9e', 'line-style': 'dotted', width: 1 } },
  ],
});

let layoutTimer = null;
function relayout() {
  clearTimeout(layoutTimer);
  // Many edges make their labels unreadable: past a few dozen only the
  // dropped ones keep theirs (the list beside the map names every edge).
  layoutTimer = setTimeout(() => {
    cy.edges().toggleClass('quiet', cy.edges().length > 40);
    cy.layout({
      name: 'cose', animate: false, randomize: false, nodeDimensionsIncludeLabels: true,
      nodeRepulsion: () => 600000, idealEdgeLength: () => 120, nestingFactor: 0.8, gravity: 0.5,
      componentSpacing: 120, nodeOverlap: 40, padding: 30,
    }).run();
  }, 200);
}

function ensureNode(n) {
  if (cy.getElementById(n.id).nonempty()) return;
  const data = { id: n.id, label: n.label, kind: n.kind, namespace: n.namespace || '', pod: n.pod || '' };
  if (n.namespace) {
    const parent = 'ns:' + n.namespace;
    if (cy.getElementById(parent).empty()) cy.add({ group: 'nodes', data: { id: parent, label: n.namespace }, classes: 'namespace' });
    data.parent = parent;
  }
  const classes = n.kind === 'reserved' || n.kind === 'ip' ? 'reserved' : n.kind === 'Service' ? 'service' : 'workload';
  cy.add({ group: 'nodes', data, classes });
  relayout();
}

function addFlow(e) {
  ensureNode(e.src);
  ensureNode(e.dst);
  const port = e.port ? `${e.protocol}/${e.port}` : e.protocol;
  // A flow to a Service's backend goes to the Service, which backs onto it.
  let to = e.dst.id;
  if (e.service) {
    ensureNode(e.service);
    to = e.service.id;
    const backs = `${e.service.id}⇢${e.dst.id}`;
    if (cy.getElementById(backs).empty()) {
      cy.add({ group: 'edges', classes: 'backs', data: { id: backs, source: e.service.id, target: e.dst.id, verdict: 'BACKEND', label: '' } });
    }
  }
  const id = `${e.src.id}→${to}|${port}|${e.verdict}`;
  const edge = cy.getElementById(id);
  if (edge.nonempty()) {
    edge.data('count', edge.data('count') + 1);
    edge.data('label', label(port, e, edge.data('count')));
    return;
  }
  cy.add({ group: 'edges', classes: e.verdict,
    data: { id, source: e.src.id, target: to, backend: e.dst.id, verdict: e.verdict, reason: e.reason || '', port, count: 1,
      policies: (e.policies || []).join(', '), label: label(port, e, 1) } });
  const li = document.createElement('li');
  li.className = e.verdict;
  li.textContent = `${name(e.src)} → ${e.service ? name(e.service) + ' → ' : ''}${name(e.dst)} ${port} ${e.verdict}${e.reason ? ' ' + e.reason : ''}` +
    (e.policies && e.policies.length ? ` (${e.policies.join(', ')})` : '');
  document.getElementById('edges').appendChild(li);
  relayout();
}

function name(n) {
  return n.namespace ? `${n.namespace}/${n.label}` : n.label;
}

function label(port, e, count) {
  return `${port}${e.verdict === 'DROPPED' ? ' ' + e.reason : ''} ×${count}`;
}

let source = null;
function follow(namespace) {
  if (source) source.close();
  cy.elements().remove();
  document.getElementById('edges').replaceChildren();
  const status = document.getElementById('status');
  status.textContent = 'connecting…';
  source = new EventSource('api/flows' + (namespace ? '?namespace=' + encodeURIComponent(namespace) : ''));
  source.onopen = () => { status.textContent = 'live'; };
  source.onerror = () => { status.textContent = 'reconnecting…'; };
  source.onmessage = (m) => addFlow(JSON.parse(m.data));
}

const select = document.getElementById('namespace');
select.addEventListener('change', () => follow(select.value));
fetch('api/namespaces').then((r) => r.json()).then((names) => {
  for (const n of names) {
    const o = document.createElement('option');
    o.value = o.textContent = n;
    select.appendChild(o);
  }
}).catch(() => {});
follow('');

// For tests and the console: the graph as data.
window.kestrelServiceMap = {
  nodes: () => cy.nodes('.workload, .reserved, .service').map((n) => n.data()),
  edges: () => cy.edges().not('.backs').map((e) => e.data()),
};
