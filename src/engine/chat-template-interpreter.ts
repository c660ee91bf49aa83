import { Environment, Interpreter } from "@huggingface/jinja";

/**
 * @huggingface/jinja's interpreter with the leniencies and Python methods of llama.cpp's Jinja
 * engine (`common/jinja/runtime.cpp`, `value.cpp`) that real chat templates depend on, so that a
 * template renders as llama-server renders it:
 * - a `for` over an undefined value runs no iteration (Hermes and Command R without tools);
 * - `+` and `~` between a string and none/undefined treat the missing side as "" (FireFunction);
 * - filters on undefined or none give empty values (`|length` 0, `|selectattr` [], …);
 * - `str.format("{}")`, `list.append`, `list.pop` (Hunyuan, Kimi K2) and `|min`, `|max`
 *   (MiniCPM5);
 * - integer keys in dict literals (Seed-OSS's budget table), `for a, b in` over tuples;
 * - values printed and `|string` as Python prints them (`True`, `None`, `{'a': 1}`), not as JSON.
 * @huggingface/jinja offers no API to add filters or methods, so this subclass intercepts the
 * node types concerned in `evaluate` and hands the rest to the base class. It reads the base
 * class's internals (`evaluateBlock`), which is why the dependency's version is pinned: the
 * real-template test fails on an upgrade that moves them.
 */
export class ChatTemplateInterpreter extends (Interpreter as new (environment: Environment) => BaseInterpreter) {
  override evaluate(statement: Node | undefined, environment: Environment): Value {
    switch (statement?.type) {
      case "For":
        return this.#for(statement as ForNode, environment);
      case "BinaryExpression":
        return this.#binary(statement as BinaryNode, environment);
      case "FilterExpression":
        return this.#filter(statement as FilterNode, environment);
      case "MemberExpression":
        return this.#member(statement as MemberNode, environment);
      case "ObjectLiteral":
        return this.#object(statement as ObjectLiteralNode, environment);
      default:
        return super.evaluate(statement, environment);
    }
  }

  #for(node: ForNode, environment: Environment): Value {
    const select = node.iterable.type === "SelectExpression" ? (node.iterable as SelectNode) : undefined;
    let iterable = this.evaluate(select ? select.lhs : node.iterable, new Environment(environment));
    if (iterable.type === "UndefinedValue") return internals(this).evaluateBlock(node.defaultBlock, new Environment(environment));
    // The base class unpacks `for a, b in …` from lists only, not from tuples (Functionary v3.2).
    if (iterable.type === "ArrayValue" && (iterable.value as Value[]).some((item) => item.type === "TupleValue")) {
      iterable = new ArrayValue((iterable.value as Value[]).map((item) => (item.type === "TupleValue" ? new ArrayValue(item.value) : item)));
    }
    const [scope, name] = hide(environment, iterable);
    const replaced = select ? clone(select, { lhs: identifier(name) }) : identifier(name);
    return super.evaluate(clone(node, { iterable: replaced }), scope);
  }

  #binary(node: BinaryNode, environment: Environment): Value {
    const operator = node.operator.value;
    if (operator !== "+" && operator !== "~") return super.evaluate(node, environment);
    const left = this.evaluate(node.left, environment);
    const right = this.evaluate(node.right, environment);
    const missing = (value: Value) => value.type === "NullValue" || value.type === "UndefinedValue";
    const text = (value: Value) => (missing(value) ? "" : pythonString(value));
    if (operator === "~" || (left.type === "StringValue" && right.type === "StringValue")) return new StringValue(text(left) + text(right));
    if ((missing(left) && right.type === "StringValue") || (missing(right) && left.type === "StringValue")) {
      return new StringValue(text(left) + text(right));
    }
    const [scope, leftName, rightName] = hide(environment, left, right);
    return super.evaluate(clone(node, { left: identifier(leftName), right: identifier(rightName) }), scope);
  }

  #filter(node: FilterNode, environment: Environment): Value {
    const operand = this.evaluate(node.operand, environment);
    const name = node.filter.type === "Identifier" ? (node.filter as IdentifierNode).value : (node.filter as CallNode).callee.value;
    const lenient = operand.type === "UndefinedValue" ? UNDEFINED_FILTERS[name] : operand.type === "NullValue" ? NONE_FILTERS[name] : undefined;
    if (lenient) return lenient();
    if ((name === "string" || (name === "safe" && operand.type !== "StringValue")) && node.filter.type === "Identifier") {
      // llama.cpp counts `|string` of a list or dict as a use of all it holds, like `tojson`.
      useDeep(operand);
      return new StringValue(pythonString(operand));
    }
    if ((name === "min" || name === "max") && operand.type === "ArrayValue" && node.filter.type === "Identifier") {
      const items = operand.value as Value[];
      if (items.length === 0) return new UndefinedValue();
      return items.reduce((best, item) => ((name === "min" ? compare(item, best) < 0 : compare(item, best) > 0) ? item : best));
    }
    if ((name === "dictsort" || name === "items") && operand.type === "ObjectValue" && hasNumberKeys(operand)) {
      const pairs = entriesOf(operand).map(([key, value]) => new ArrayValue([keyValue(key), value]));
      if (name === "dictsort") pairs.sort((a, b) => compare((a.value as Value[])[0]!, (b.value as Value[])[0]!));
      return new ArrayValue(pairs);
    }
    const [scope, operandName] = hide(environment, operand);
    return super.evaluate(clone(node, { operand: identifier(operandName) }), scope);
  }

  #member(node: MemberNode, environment: Environment): Value {
    const object = this.evaluate(node.object, environment);
    if (node.computed && node.property.type === "SliceExpression") {
      const [scope, objectName] = hide(environment, object);
      return super.evaluate(clone(node, { object: identifier(objectName) }), scope);
    }
    const property = node.computed ? this.evaluate(node.property, environment) : undefined;
    const name = node.computed ? (property!.type === "StringValue" ? (property!.value as string) : undefined) : (node.property as IdentifierNode).value;
    if (object.type === "ObjectValue" && property?.type === "IntegerValue") {
      return (object.value as Map<unknown, Value>).get(property.value) ?? new UndefinedValue();
    }
    // The common cases answered here, as the base class would, without handing the object back.
    const found = object.type === "ObjectValue" && name !== undefined ? (object.value as Map<string, Value>).get(name) : undefined;
    if (found) return found;
    if (object.type === "ArrayValue" && property?.type === "IntegerValue") {
      return (object.value as Value[]).at(property.value as number) ?? new UndefinedValue();
    }
    const method = name === undefined ? undefined : METHODS[object.type]?.[name];
    if (method && !(object.type === "ObjectValue" && (object.value as Map<string, Value>).has(name!))) {
      return new FunctionValue((args: Value[]) => method(object, args));
    }
    const [scope, objectName, propertyName] = hide(environment, object, property ?? new UndefinedValue());
    return super.evaluate(clone(node, node.computed ? { object: identifier(objectName), property: identifier(propertyName) } : { object: identifier(objectName) }), scope);
  }

  #object(node: ObjectLiteralNode, environment: Environment): Value {
    const mapping = new Map<string | number, Value>();
    for (const [keyNode, valueNode] of node.value) {
      const key = this.evaluate(keyNode, environment);
      if (key.type !== "StringValue" && key.type !== "IntegerValue") throw new Error(`Object keys must be strings or integers: got ${key.type}`);
      mapping.set(key.value as string | number, this.evaluate(valueNode, environment));
    }
    return new ObjectValue(mapping);
  }
}

// Printing goes through evaluateBlock, which the base class calls directly, not through evaluate.
(ChatTemplateInterpreter.prototype as unknown as Internals).evaluateBlock = function (this: ChatTemplateInterpreter, statements, environment) {
  let result = "";
  for (const statement of statements) {
    const value = this.evaluate(statement, environment);
    if (value.type !== "NullValue" && value.type !== "UndefinedValue") result += pythonString(value);
  }
  return new StringValue(result);
};

// @huggingface/jinja's types do not resolve under NodeNext (its declarations import "./runtime"
// without an extension), so the shapes this file relies on are written down here.
interface Node {
  readonly type: string;
}
interface Value {
  readonly type: string;
  value: unknown;
  toString(): string;
}
interface BaseInterpreter {
  run(program: unknown): Value;
  evaluate(statement: Node | undefined, environment: Environment): Value;
}
type IdentifierNode = Node & { value: string };
type CallNode = Node & { callee: IdentifierNode; args: Node[] };
type SelectNode = Node & { lhs: Node; test: Node };
type ForNode = Node & { iterable: Node; defaultBlock: Node[] };
type BinaryNode = Node & { operator: { value: string }; left: Node; right: Node };
type FilterNode = Node & { operand: Node; filter: IdentifierNode | CallNode };
type MemberNode = Node & { object: Node; property: Node; computed: boolean };
type ObjectLiteralNode = Node & { value: Map<Node, Node> };

interface Internals {
  evaluateBlock(statements: Node[], environment: Environment): Value;
}

function internals(interpreter: ChatTemplateInterpreter): Internals {
  return interpreter as unknown as Internals;
}

// The runtime value classes, which @huggingface/jinja does not export, taken from values it makes.
type ValueClass = new (value?: unknown) => Value;
const classOf = (value: unknown) => new Environment().set("value", value).constructor as ValueClass;
const StringValue = classOf("");
const IntegerValue = classOf(0);
const ArrayValue = classOf([]);
const ObjectValue = classOf({});
const UndefinedValue = classOf(undefined);
const FunctionValue = classOf(() => null);

/** A name no template can write, for handing a value already evaluated back to the base class. */
let hidden = 0;
function hide(environment: Environment, ...values: Value[]): [Environment, ...string[]] {
  const scope = new Environment(environment);
  const names = values.map((value) => {
    const name = `\u0000${hidden++}`;
    scope.setVariable(name, value);
    return name;
  });
  return [scope, ...names];
}

function identifier(name: string): Node {
  return { type: "Identifier", value: name } as unknown as Node;
}

function clone<T extends Node>(node: T, fields: Record<string, unknown>): T {
  return Object.assign(Object.create(Object.getPrototypeOf(node) as object) as T, node, fields);
}

const empty = {
  string: () => new StringValue(""),
  array: () => new ArrayValue([]),
  integer: () => new IntegerValue(0),
  undefined: () => new UndefinedValue(),
};

/** `value_undefined_t::get_builtins` in llama.cpp. */
const UNDEFINED_FILTERS: Record<string, (() => Value) | undefined> = {
  capitalize: empty.string, first: empty.undefined, items: empty.array, join: empty.string, last: empty.undefined,
  length: empty.integer, list: empty.array, lower: empty.string, map: empty.array, max: empty.undefined,
  min: empty.undefined, reject: empty.array, rejectattr: empty.array, replace: empty.string, reverse: empty.array,
  safe: empty.string, select: empty.array, selectattr: empty.array, sort: empty.array, string: empty.string,
  strip: empty.string, sum: empty.integer, title: empty.string, trim: empty.string, truncate: empty.string,
  unique: empty.array, upper: empty.string, wordcount: empty.integer,
};

/** `value_none_t::get_builtins` in llama.cpp. */
const NONE_FILTERS: Record<string, (() => Value) | undefined> = {
  string: () => new StringValue("None"), safe: () => new StringValue("None"), items: empty.array, map: empty.array,
  reject: empty.array, rejectattr: empty.array, select: empty.array, selectattr: empty.array, unique: empty.array,
};

/** Python methods templates call that @huggingface/jinja lacks, by the receiver's type. */
const METHODS: Record<string, Record<string, ((self: Value, args: Value[]) => Value) | undefined> | undefined> = {
  StringValue: {
    // llama.cpp supports only "{}" placeholders, filled in order.
    format: (self, args) => {
      let next = 0;
      return new StringValue(
        (self.value as string).replace(/\{\}/g, () => {
          const arg = args[next++];
          if (!arg) throw new Error("format() has fewer arguments than placeholders");
          return pythonString(arg);
        }),
      );
    },
  },
  ArrayValue: {
    append: (self, [item]) => {
      (self.value as Value[]).push(item ?? new UndefinedValue());
      return self;
    },
    pop: (self, [index]) => {
      const items = self.value as Value[];
      const at = index ? Number(index.value) : -1;
      const position = at < 0 ? items.length + at : at;
      if (position < 0 || position >= items.length) throw new Error("pop index out of range");
      return items.splice(position, 1)[0]!;
    },
  },
};

function entriesOf(value: Value): [unknown, Value][] {
  // Map.prototype's own iterator: printing is not a use the capability probes count.
  return Array.from(Map.prototype.entries.call(value.value as Map<unknown, Value>) as Iterable<[unknown, Value]>);
}

/** Reads every value inside `value` through its own map, so usage tracking sees them (UsageMap). */
function useDeep(value: Value): void {
  if (value.value instanceof Map) for (const item of (value.value as Map<unknown, Value>).values()) useDeep(item);
  else if (Array.isArray(value.value)) for (const item of value.value as Value[]) useDeep(item);
}

function hasNumberKeys(value: Value): boolean {
  return entriesOf(value).some(([key]) => typeof key === "number");
}

function keyValue(key: unknown): Value {
  return typeof key === "number" ? new IntegerValue(key) : new StringValue(String(key));
}

function compare(a: Value, b: Value): number {
  const numeric = (value: Value) => value.type === "IntegerValue" || value.type === "FloatValue" || value.type === "BooleanValue";
  if (numeric(a) && numeric(b)) return Number(a.value) - Number(b.value);
  if (a.type === "StringValue" && b.type === "StringValue") return (a.value as string) < (b.value as string) ? -1 : (a.value as string) > (b.value as string) ? 1 : 0;
  throw new Error(`Cannot compare ${a.type} with ${b.type}`);
}

/** Python's `str()` of a value, as llama.cpp's `as_string` writes it. */
export function pythonString(value: Value): string {
  switch (value.type) {
    case "StringValue":
      return value.value as string;
    case "BooleanValue":
      return value.value ? "True" : "False";
    case "NullValue":
      return "None";
    case "UndefinedValue":
      return "";
    case "ArrayValue":
      return `[${(value.value as Value[]).map(pythonRepr).join(", ")}]`;
    case "TupleValue": {
      const items = (value.value as Value[]).map(pythonRepr);
      return `(${items.join(", ")}${items.length === 1 ? "," : ""})`;
    }
    case "ObjectValue":
      return `{${entriesOf(value).map(([key, item]) => `${pythonRepr(keyValue(key))}: ${pythonRepr(item)}`).join(", ")}}`;
    default:
      return value.toString();
  }
}

/** Python's `repr()`: strings quoted, with JSON's double quotes when they hold a single quote. */
function pythonRepr(value: Value): string {
  if (value.type !== "StringValue") return pythonString(value);
  const text = value.value as string;
  return text.includes("'") ? JSON.stringify(text) : `'${text}'`;
}
