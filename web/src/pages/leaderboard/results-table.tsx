import { useMemo, useState } from "preact/hooks";
import { bestFirst, sortResults, type ModelResults, type ResultColumn, type SortOrder } from "./results-model.js";

/** What the table shows: every model, the columns, the first order, and the filters' inputs. */
export interface ResultsTableProps {
  rows: ModelResults[];
  columns: ResultColumn[];
  initialOrder: SortOrder;
  /** The tasks with results, for the "Measured on" filter. */
  tasks: string[];
  /** Digests on the chart's Pareto front, for the "only on the front" filter; null while unknown. */
  frontDigests: ReadonlySet<string> | null;
}

/** The results table: one row per fork, sortable by every column, filterable by name, task and front. */
export function ResultsTable({ rows, columns, initialOrder, tasks, frontDigests }: ResultsTableProps) {
  const [order, setOrder] = useState(initialOrder);
  const [nameFilter, setNameFilter] = useState("");
  const [task, setTask] = useState("");
  const [onlyFront, setOnlyFront] = useState(false);
  const shown = useMemo(() => {
    const needle = nameFilter.trim().toLowerCase();
    const kept = rows.filter((row) =>
      (needle === "" || row.names.some((name) => name.toLowerCase().includes(needle)) || row.digest.includes(needle)) &&
      (task === "" || row.tasks.includes(task)) &&
      (!onlyFront || frontDigests === null || frontDigests.has(row.digest)));
    return sortResults(kept, order);
  }, [rows, order, nameFilter, task, onlyFront, frontDigests]);
  const sortBy = (key: string, first: SortOrder) =>
    setOrder((current) => (current.key === key ? { key, direction: current.direction === "ascending" ? "descending" : "ascending" } : first));

  return (
    <>
      <form class="inline table-filters" role="search" aria-label="Filter results" onSubmit={(event) => event.preventDefault()}>
        <label>Filter by name
          <input type="search" value={nameFilter} placeholder="e.g. q4" onInput={(event) => setNameFilter(event.currentTarget.value)} />
        </label>
        <label>Measured on
          <select value={task} onChange={(event) => setTask(event.currentTarget.value)}>
            <option value="">any task</option>
            {tasks.map((name) => <option key={name} value={name}>{name}</option>)}
          </select>
        </label>
        <label class="checkbox">
          <input type="checkbox" checked={onlyFront} disabled={frontDigests === null} onChange={(event) => setOnlyFront(event.currentTarget.checked)} />
          Only on the Pareto front
        </label>
      </form>
      <p class="muted" aria-live="polite">{shown.length} of {rows.length} models shown</p>
      <div class="table-wrap">
        <table class="data results">
          <caption class="visually-hidden">Results by model; the column buttons sort the table</caption>
          <thead>
            <tr>
              <SortHeader label="Model" sortKey="name" order={order} onSort={() => sortBy("name", { key: "name", direction: "ascending" })} />
              <th scope="col">Quantization</th>
              {columns.map((column) => (
                <SortHeader key={column.key} label={column.label} sortKey={column.key} order={order} numeric
                  hint={column.higherIsBetter ? "higher is better" : "lower is better"} onSort={() => sortBy(column.key, bestFirst(column))} />
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((row) => <ResultRow key={row.digest} row={row} columns={columns} />)}
          </tbody>
        </table>
      </div>
    </>
  );
}

interface SortHeaderProps {
  label: string;
  sortKey: string;
  order: SortOrder;
  numeric?: boolean;
  hint?: string;
  onSort: () => void;
}

/** A column header whose button sorts by it; `aria-sort` tells assistive technology the order. */
function SortHeader({ label, sortKey, order, numeric = false, hint, onSort }: SortHeaderProps) {
  const active = order.key === sortKey;
  return (
    <th scope="col" class={numeric ? "num" : undefined} aria-sort={active ? order.direction : "none"}>
      <button type="button" class="sort" title={hint} onClick={onSort}>
        {label}
        <span aria-hidden="true" class="sort-mark">{active ? (order.direction === "ascending" ? " ▲" : " ▼") : ""}</span>
      </button>
    </th>
  );
}

function ResultRow({ row, columns }: { row: ModelResults; columns: ResultColumn[] }) {
  const ref = row.names[0] ?? row.digest;
  return (
    <tr>
      <th scope="row">
        <a href={`/models/${encodeURIComponent(ref)}`}>{ref}</a>
        {row.names.length > 1 && <span class="muted"> ({row.names.slice(1).join(", ")})</span>}
      </th>
      <td>{row.quantization}</td>
      {columns.map((column) => {
        const value = row.values[column.key];
        const flags = row.flags[column.key];
        const apart = row.apart[column.key];
        const error = row.errors[column.key];
        const noise = row.withinNoise[column.key];
        return (
          <td key={column.key} class="num">
            {typeof value === "number"
              ? <>
                  {column.format(value)}
                  {typeof error === "number" && <span class="muted" title="one standard error"> ±{column.format(error)}</span>}
                  {noise && <span class="noise" title={`within noise of ${noise.join(", ")}: not distinguishable at 95 %`}> ≈</span>}
                </>
              : apart
                ? <span class="flag" title={apart}>not comparable</span>
                : flags ? <span class="flag" title="not a score">{flags.join(", ")}</span> : <NotMeasured />}
          </td>
        );
      })}
    </tr>
  );
}

/** An empty cell: a dash to the eye, words to a screen reader. */
function NotMeasured() {
  return <><span class="muted" aria-hidden="true">—</span><span class="visually-hidden">not measured</span></>;
}
