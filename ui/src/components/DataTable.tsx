// A virtualized, server-paginated table: only the visible rows are in the DOM, pages are
// fetched by offset as they scroll into view (lib/paged.ts). Rows are focusable; arrow keys
// move between them, Enter or Space opens one. Screen readers get aria-rowcount/rowindex.

import { useEffect, useRef, type ReactNode, type KeyboardEvent } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import { countText, type PagedList } from "../lib/paged";
import { ErrorState, Loading } from "./ui";

export interface Column<T> {
  key: string;
  header: ReactNode;
  /** A CSS grid track: `80px`, `1fr`, `minmax(120px, 2fr)`. */
  width: string;
  render: (row: T) => ReactNode;
  className?: string;
}

const ROW_HEIGHT = 40;

export function DataTable<T>(props: {
  label: string;
  list: PagedList<T>;
  columns: Column<T>[];
  rowKey: (row: T) => string | number;
  onOpen?: (row: T) => void;
  activeKey?: string | number | null;
  empty: ReactNode;
  selection?: {
    isSelected: (row: T) => boolean;
    toggle: (row: T) => void;
    allLoadedSelected: boolean;
    toggleAllLoaded: () => void;
  };
  footer?: ReactNode;
}) {
  const { list, columns, selection } = props;
  const scrollRef = useRef<HTMLDivElement>(null);
  const template = (selection ? "44px " : "") + columns.map((c) => c.width).join(" ");
  const virtualizer = useVirtualizer({
    count: list.count,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const last = items[items.length - 1]?.index ?? -1;
  const ensure = list.ensure;
  // Fetch the pages under the visible rows once scrolling pauses (dragging the scrollbar across
  // 100,000 rows must not request every page on the way).
  useEffect(() => {
    if (last < first) return;
    const t = setTimeout(() => ensure(first, last), 60);
    return () => clearTimeout(t);
  }, [first, last, ensure, list.count]);

  const focusRow = (index: number) => {
    if (index < 0 || index >= list.count) return;
    virtualizer.scrollToIndex(index, { align: "auto" });
    requestAnimationFrame(() => {
      scrollRef.current?.querySelector<HTMLElement>(`[data-index="${index}"]`)?.focus();
    });
  };

  const onKey = (e: KeyboardEvent<HTMLDivElement>, index: number, row: T | undefined) => {
    if (e.target !== e.currentTarget) return;
    if (e.key === "ArrowDown") {
      e.preventDefault();
      focusRow(index + 1);
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      focusRow(index - 1);
    } else if (e.key === "Home") {
      e.preventDefault();
      focusRow(0);
    } else if (e.key === "End") {
      e.preventDefault();
      focusRow(list.count - 1);
    } else if ((e.key === "Enter" || e.key === " ") && row && props.onOpen) {
      e.preventDefault();
      props.onOpen(row);
    } else if (e.key === "x" && row && selection) {
      selection.toggle(row);
    }
  };

  const showEmpty = !list.initialLoading && !list.error && list.count === 0;
  // The rows in view (without overscan), for "Showing 1–18 of 12,345 rows".
  const inView = virtualizer.range;
  const counted = countText(list, inView && inView.endIndex >= inView.startIndex ? [inView.startIndex, inView.endIndex] : null);
  return (
    <div className="table-wrap" role="table" aria-label={props.label} aria-rowcount={list.exactTotal ?? -1}>
      <div className="t-head" role="row" style={{ gridTemplateColumns: template }}>
        {selection ? (
          <div className="t-cell check" role="columnheader">
            <input
              type="checkbox"
              aria-label="Select all loaded rows"
              checked={selection.allLoadedSelected}
              onChange={selection.toggleAllLoaded}
              disabled={list.loadedRows === 0}
            />
          </div>
        ) : null}
        {columns.map((c) => (
          <div key={c.key} className={`t-cell ${c.className ?? ""}`} role="columnheader">
            {c.header}
          </div>
        ))}
      </div>
      <div className="t-scroll" ref={scrollRef} role="rowgroup">
        {list.initialLoading ? <Loading /> : null}
        {list.error && list.loadedRows === 0 ? <ErrorState error={list.error} retry={list.reload} /> : null}
        {showEmpty ? props.empty : null}
        <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
          {items.map((vi) => {
            const row = list.rowAt(vi.index);
            const key = row ? props.rowKey(row) : `placeholder-${vi.index}`;
            const active = row !== undefined && props.activeKey !== undefined && props.activeKey === props.rowKey(row);
            return (
              <div
                key={key}
                data-index={vi.index}
                className={`t-row ${props.onOpen && row ? "clickable" : ""}`}
                role="row"
                aria-rowindex={vi.index + 2}
                aria-selected={active || (row && selection?.isSelected(row)) ? true : undefined}
                tabIndex={0}
                style={{ top: vi.start, height: ROW_HEIGHT, gridTemplateColumns: template }}
                onClick={(e) => {
                  if ((e.target as HTMLElement).closest("input, button, a")) return;
                  if (row && props.onOpen) props.onOpen(row);
                }}
                onKeyDown={(e) => onKey(e, vi.index, row)}
              >
                {selection ? (
                  <div className="t-cell check" role="cell">
                    {row ? (
                      <input type="checkbox" aria-label="Select row" checked={selection.isSelected(row)} onChange={() => selection.toggle(row)} />
                    ) : null}
                  </div>
                ) : null}
                {columns.map((c) => (
                  <div key={c.key} className={`t-cell ${c.className ?? ""}`} role="cell">
                    {row ? c.render(row) : <div className="skeleton" style={{ width: "70%" }} />}
                  </div>
                ))}
              </div>
            );
          })}
        </div>
      </div>
      <div className="t-foot">
        <span className="t-count">
          {counted.range ? <>Showing {counted.range} of </> : null}
          {/* Only the total is announced: the range changes with every scroll. */}
          <span aria-live="polite">{counted.total}</span>
        </span>
        {list.error && list.loadedRows > 0 ? <span style={{ color: "var(--danger)" }}>Some rows failed to load.</span> : null}
        <span className="spacer" />
        {props.footer}
      </div>
    </div>
  );
}
