import { useMemo, useState } from "preact/hooks";
import { formatCount, formatUsd } from "../../format.js";
import type { PricesAnswer, UsageGroup, UsageGroups } from "./operations-api.js";
import { UsageChart } from "./usage-chart.js";
import { measureOf, periodBuckets, PERIODS, usageSeries, type PeriodName, type UsageMeasure } from "./usage-series.js";
import { useJson } from "./use-json.js";

export interface UsageSectionProps {
  /** Names a model digest. */
  readonly modelLabel: (digest: string) => string;
  /** Names a key id. */
  readonly keyLabel: (id: string) => string;
}

type Split = "model" | "key";

/** Usage over time (a stacked bar chart by model or key) and the totals by model and by key. */
export function UsageSection({ modelLabel, keyLabel }: UsageSectionProps) {
  const [periodName, setPeriodName] = useState<PeriodName>("24h");
  const [split, setSplit] = useState<Split>("model");
  const [measure, setMeasure] = useState<UsageMeasure>("tokens");
  const period = PERIODS[periodName];
  const since = `since=${period.since}`;
  const overTime = useJson<UsageGroups>(`/api/usage?${since}&by=${period.bucket}&split=${split}`);
  const byModel = useJson<UsageGroups>(`/api/usage?${since}&by=model`);
  const byKey = useJson<UsageGroups>(`/api/usage?${since}&by=key`);
  const prices = useJson<PricesAnswer>("/api/prices");
  const labelOf = split === "model" ? modelLabel : keyLabel;

  const chartData = useMemo(
    () => usageSeries(overTime.data?.groups ?? [], periodBuckets(period, Date.now()), measure, labelOf),
    [overTime.data, period, measure, labelOf],
  );
  const showCost = (prices.data?.prices.length ?? 0) > 0;
  const error = overTime.error ?? byModel.error ?? byKey.error;
  const per = period.bucket === "hour" ? "hour" : "day";
  const summary = chartData.series.length === 0
    ? "no requests"
    : chartData.series.map((series) => `${series.label} ${formatCount(series.total)}`).join("; ");
  const description = `Stacked bar chart of ${measure} per ${per}, ${period.label.toLowerCase()}, by ${split}: ${summary}. The tables below list the totals.`;

  return (
    <section aria-labelledby="usage-heading">
      <h2 id="usage-heading">Usage</h2>
      <form class="inline usage-controls" onSubmit={(event) => event.preventDefault()}>
        <label>Period
          <select value={periodName} onChange={(event) => setPeriodName(event.currentTarget.value as PeriodName)}>
            {(Object.keys(PERIODS) as PeriodName[]).map((name) => <option key={name} value={name}>{PERIODS[name].label}</option>)}
          </select>
        </label>
        <Choice legend="Group by" name="usage-split" value={split} options={["model", "key"]} onChange={setSplit} />
        <Choice legend="Measure" name="usage-measure" value={measure} options={["tokens", "requests"]} onChange={setMeasure} />
      </form>
      {error && <p class="error" role="alert">{error}</p>}
      <UsageChart data={chartData} measure={measure} description={description} />
      <div class="usage-totals">
        <TotalsTable caption="Totals by model" column="Model" groups={byModel.data?.groups} labelOf={modelLabel} showCost={showCost} />
        <TotalsTable caption="Totals by key" column="Key" groups={byKey.data?.groups} labelOf={keyLabel} showCost={showCost} />
      </div>
    </section>
  );
}

interface ChoiceProps<T extends string> {
  readonly legend: string;
  readonly name: string;
  readonly value: T;
  readonly options: readonly T[];
  readonly onChange: (value: T) => void;
}

/** A row of radio buttons: one choice seen at a glance, arrow keys to move. */
function Choice<T extends string>({ legend, name, value, options, onChange }: ChoiceProps<T>) {
  return (
    <fieldset class="choice">
      <legend>{legend}</legend>
      {options.map((option) => (
        <label key={option}>
          <input type="radio" name={name} value={option} checked={value === option} onChange={() => onChange(option)} />
          {option[0]!.toUpperCase() + option.slice(1)}
        </label>
      ))}
    </fieldset>
  );
}

interface TotalsTableProps {
  readonly caption: string;
  readonly column: string;
  readonly groups: UsageGroup[] | undefined;
  readonly labelOf: (group: string) => string;
  readonly showCost: boolean;
}

/** Requests, tokens and (when prices are set) cost per model or key, with a total row. */
function TotalsTable({ caption, column, groups, labelOf, showCost }: TotalsTableProps) {
  const rows = [...(groups ?? [])].sort((a, b) => measureOf(b, "tokens") - measureOf(a, "tokens"));
  const total = (pick: (group: UsageGroup) => number) => rows.reduce((sum, group) => sum + pick(group), 0);
  return (
    <div class="table-wrap">
      <table class="data">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{column}</th>
            <th scope="col" class="num">Requests</th>
            <th scope="col" class="num">Prompt tokens</th>
            <th scope="col" class="num">Completion tokens</th>
            <th scope="col" class="num">Errors</th>
            {showCost && <th scope="col" class="num">Cost</th>}
          </tr>
        </thead>
        <tbody>
          {groups === undefined && <tr><td colSpan={showCost ? 6 : 5} class="muted">Loading…</td></tr>}
          {groups?.length === 0 && <tr><td colSpan={showCost ? 6 : 5} class="muted">No requests in this period.</td></tr>}
          {rows.map((group) => (
            <tr key={group.group}>
              <th scope="row">{labelOf(group.group)}</th>
              <td class="num">{formatCount(group.requests)}</td>
              <td class="num">{formatCount(group.promptTokens)}</td>
              <td class="num">{formatCount(group.completionTokens)}</td>
              <td class="num">{formatCount(group.errors)}</td>
              {showCost && <td class="num">{formatUsd(group.costUsd)}</td>}
            </tr>
          ))}
        </tbody>
        {rows.length > 1 && (
          <tfoot>
            <tr>
              <th scope="row">Total</th>
              <td class="num">{formatCount(total((group) => group.requests))}</td>
              <td class="num">{formatCount(total((group) => group.promptTokens))}</td>
              <td class="num">{formatCount(total((group) => group.completionTokens))}</td>
              <td class="num">{formatCount(total((group) => group.errors))}</td>
              {showCost && <td class="num">{formatUsd(total((group) => group.costUsd))}</td>}
            </tr>
          </tfoot>
        )}
      </table>
    </div>
  );
}
