/*
 * Markers that select by extras and dependency groups (PEP 751).
 *
 * A pylock.toml marker may test `'dev' in dependency_groups` or `'socks' in extras`. pip cannot
 * evaluate those from a requirements file (its marker environment has neither variable), so they
 * are decided here, for the install's selection: the pylock reader asks for a default install, no
 * extras and the file's `default-groups` (PDM writes `"default" in dependency_groups` on every
 * entry). What is left of the marker goes to pip; an entry the selection leaves out is not
 * installed. A marker without either variable is passed on verbatim.
 */
import { parseMarker, renderCompare, renderMarker, type MarkerCompare, type MarkerNode, type MarkerValue } from './marker.js';
import { normalizeName } from './normalize.js';
import { invalid, show } from './problem.js';

/** The extras and dependency groups an install asks for, by normalised name. */
export interface Selection {
  extras: ReadonlySet<string>;
  dependencyGroups: ReadonlySet<string>;
}

/** What selectedMarker returns for an entry the selection leaves out. */
export const NOT_SELECTED = Symbol('not selected');

/** What is left of a marker once the selection is decided: no groups, since the printer puts back the parentheses it needs. */
type Remaining = MarkerCompare | { kind: 'and' | 'or'; items: Remaining[] };

type SelectionVariable = { kind: 'variable'; name: 'extras' | 'dependency_groups' };

/**
 * The marker pip is given for a pylock.toml entry (null: none), or NOT_SELECTED. A syntax error has
 * the requirements parser's message; `where` names the entry in the other errors.
 */
export function selectedMarker(marker: string | undefined, selection: Selection, where: string): string | null | typeof NOT_SELECTED {
  if (marker === undefined) return null;
  if (marker.trim() === '') invalid(`${where} has an empty environment marker`);
  const tree = parseMarker(marker);
  if (!testsSelection(tree)) return renderMarker(tree);
  const resolved = resolve(tree, (compare) => selects(compare, selection, where, marker));
  if (resolved === true) return null;
  if (resolved === false) return NOT_SELECTED;
  return printRemaining(resolved);
}

function isSelectionVariable(value: MarkerValue): value is SelectionVariable {
  return value.kind === 'variable' && (value.name === 'extras' || value.name === 'dependency_groups');
}

function testsSelection(node: MarkerNode): boolean {
  switch (node.kind) {
    case 'compare':
      return isSelectionVariable(node.left) || isSelectionVariable(node.right);
    case 'group':
      return testsSelection(node.item);
    default:
      return node.items.some(testsSelection);
  }
}

/** true or false for `'name' in extras` and the like, null for any other comparison. */
function selects(compare: MarkerCompare, selection: Selection, where: string, marker: string): boolean | null {
  const { left, op, right } = compare;
  const variable = [left, right].find(isSelectionVariable);
  if (!variable) return null;
  if (variable !== right || left.kind !== 'string' || (op !== 'in' && op !== 'not in')) {
    invalid(`${where} has the environment marker '${show(marker)}'; PEP 751 markers test ${variable.name} only as "'name' in ${variable.name}"`);
  }
  const names = variable.name === 'extras' ? selection.extras : selection.dependencyGroups;
  const found = names.has(normalizeName(left.value));
  return op === 'in' ? found : !found;
}

/**
 * Decides every comparison `decide` can (left to right, so the first bad one is the one reported)
 * and folds the and/or nodes around the answers: true or false when the whole marker is decided.
 */
function resolve(node: MarkerNode, decide: (compare: MarkerCompare) => boolean | null): Remaining | boolean {
  if (node.kind === 'group') return resolve(node.item, decide);
  if (node.kind === 'compare') return decide(node) ?? node;
  const decisive = node.kind === 'or'; // true decides an `or`, false an `and`
  const items = node.items.map((item) => resolve(item, decide));
  if (items.includes(decisive)) return decisive;
  const rest = items.filter((item): item is Remaining => typeof item !== 'boolean');
  const [first] = rest;
  if (first === undefined) return !decisive;
  return rest.length === 1 ? first : { kind: node.kind, items: rest };
}

/** Each comparison rendered canonically (renderCompare), with parentheses only around an `or` inside an `and`. */
function printRemaining(node: Remaining): string {
  if (node.kind === 'compare') return renderCompare(node);
  return node.items.map((item) => (node.kind === 'and' && item.kind === 'or' ? `(${printRemaining(item)})` : printRemaining(item))).join(` ${node.kind} `);
}
