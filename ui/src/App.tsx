// The shell: reads the token, asks who we are (GET /api/me), then shows the sidebar with live
// counts, the top bar (person, role, theme), the alert banner and the pages.

import { lazy, Suspense, useEffect, useState, type ComponentType, type ReactNode } from "react";
import { NavLink, Navigate, Route, Routes, useLocation } from "react-router";
import { useQuery } from "@tanstack/react-query";
import { Toaster } from "sonner";
import {
  Activity,
  AlertOctagon,
  Cable,
  CalendarClock,
  FileClock,
  GitMerge,
  History,
  KeyRound,
  LayoutDashboard,
  LogOut,
  Moon,
  ShieldCheck,
  UserCheck,
  Sun,
  Workflow,
  Loader2,
} from "lucide-react";
import { api, ApiError, onAuthLost, setToken } from "./api/client";
import { SessionContext, useApprovals, useMe, useMetrics, useScheduled } from "./api/queries";
import { initToken, storeToken } from "./lib/session";
import { useTheme } from "./lib/theme";
import { ROLE_LABEL } from "./lib/roles";
import { formatCount } from "./lib/format";
import { AlertBanner } from "./components/AlertBanner";
import { SignIn } from "./pages/SignIn";
import { ErrorState, Loading } from "./components/ui";
// Each page is a chunk of its own, loaded when first visited. Shared code is in chunks of its
// own too (see vite.config.ts), never in this entry, so no page chunk imports the entry back:
// WebKitGTK (the desktop window) evaluated a page chunk in such a cycle before the code it
// imports was ready.
const page = <K extends string>(load: () => Promise<Record<K, ComponentType>>, name: K) => lazy(() => load().then((m) => ({ default: m[name] })));
const Dashboard = page(() => import("./pages/Dashboard"), "Dashboard");
const SystemsPage = page(() => import("./pages/Systems"), "SystemsPage");
const SystemEditPage = page(() => import("./pages/SystemEdit"), "SystemEditPage");
const PlanPage = page(() => import("./pages/Plan"), "PlanPage");
const MapperPage = page(() => import("./pages/Mapper"), "MapperPage");
const OwnershipPage = page(() => import("./pages/Ownership"), "OwnershipPage");
const ExceptionsPage = page(() => import("./pages/Exceptions"), "ExceptionsPage");
const ApprovalsPage = page(() => import("./pages/Approvals"), "ApprovalsPage");
const ScheduledPage = page(() => import("./pages/Scheduled"), "ScheduledPage");
const HistoryPage = page(() => import("./pages/History"), "HistoryPage");
const DeadLettersPage = page(() => import("./pages/DeadLetters"), "DeadLettersPage");
const AuditPage = page(() => import("./pages/Audit"), "AuditPage");
const RecordPage = page(() => import("./pages/Audit"), "RecordPage");
const TokensPage = page(() => import("./pages/Tokens"), "TokensPage");

const initial = initToken();
setToken(initial);

export function App() {
  const [theme, toggleTheme] = useTheme();
  const [token, setTok] = useState<string | null>(initial);
  const [lostMessage, setLost] = useState<string | null>(null);

  useEffect(() => {
    onAuthLost(() => {
      storeToken(null);
      setToken(null);
      setTok(null);
      setLost("The engine no longer accepts this token (it was revoked, it was the launch token of an engine that has since restarted, or it is wrong). Open the address that `concord serve` printed.");
    });
  }, []);

  const me = useQuery({
    queryKey: ["me", token],
    queryFn: () => api.get("/api/me"),
    enabled: token !== null,
    retry: false,
  });

  const signIn = (t: string) => {
    storeToken(t);
    setToken(t);
    setLost(null);
    setTok(t);
  };
  const signOut = () => {
    storeToken(null);
    setToken(null);
    setLost(null);
    setTok(null);
  };

  // A token the engine knows but that may not open the console (a Prometheus scraper's).
  const refused = me.error instanceof ApiError && me.error.status === 403 ? me.error.message : null;
  let body;
  if (token === null || (me.error instanceof ApiError && me.error.status === 401)) {
    body = <SignIn onToken={signIn} message={lostMessage} />;
  } else if (refused !== null) {
    body = <SignIn onToken={signIn} message={`This token cannot open the console (${refused}). Sign in with a token issued to a person.`} />;
  } else if (me.isPending) {
    body = (
      <div className="signin" role="status">
        <Loader2 className="spin" aria-label="Connecting to the engine" />
      </div>
    );
  } else if (me.error) {
    body = (
      <div className="signin">
        <div className="card">
          <ErrorState error={me.error} retry={() => void me.refetch()} title="Cannot reach the Concord engine" />
        </div>
      </div>
    );
  } else {
    body = (
      <SessionContext.Provider value={me.data}>
        <Shell theme={theme} toggleTheme={toggleTheme} signOut={signOut} />
      </SessionContext.Provider>
    );
  }
  return (
    <>
      {body}
      <Toaster theme={theme} richColors closeButton position="bottom-right" toastOptions={{ duration: 6000 }} />
    </>
  );
}

const TITLES: [string, string][] = [
  ["/systems", "Systems"],
  ["/mapper", "Field mapper"],
  ["/ownership", "Ownership"],
  ["/exceptions", "Exceptions"],
  ["/approvals", "Approvals"],
  ["/scheduled", "Scheduled changes"],
  ["/dead-letters", "Dead letters"],
  ["/audit", "Audit"],
  ["/records", "Record lineage"],
  ["/tokens", "Tokens"],
  ["/history", "Configuration history"],
];

function Shell({ theme, toggleTheme, signOut }: { theme: string; toggleTheme: () => void; signOut: () => void }) {
  const metrics = useMetrics();
  const approvals = useApprovals();
  const scheduled = useScheduled();
  const loc = useLocation();
  const me = useMe();
  const title = TITLES.find(([p]) => loc.pathname.startsWith(p))?.[1] ?? "Dashboard";
  useEffect(() => {
    document.title = `${title} · Concord`;
  }, [title]);
  const open = metrics.data?.open_exceptions;
  const dead = metrics.data?.dead_letters;
  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <nav className="sidebar" aria-label="Main">
        <div className="brand">
          <div className="brand-mark" aria-hidden="true">
            <GitMerge size={16} />
          </div>
          <span>Concord</span>
        </div>
        <NavItem to="/" icon={<LayoutDashboard size={17} />} label="Dashboard" end />
        <div className="nav-section">Operate</div>
        <NavItem to="/exceptions" icon={<ShieldCheck size={17} />} label="Exceptions" count={open} tone="warm" />
        <NavItem to="/approvals" icon={<UserCheck size={17} />} label="Approvals" count={approvals.data?.awaiting_you} tone="warm" countLabel="awaiting your approval" />
        <NavItem to="/scheduled" icon={<CalendarClock size={17} />} label="Scheduled" count={scheduled.data?.scheduled} countLabel="changes waiting for their date" />
        <NavItem to="/dead-letters" icon={<AlertOctagon size={17} />} label="Dead letters" count={dead} tone="hot" />
        <NavItem to="/audit" icon={<History size={17} />} label="Audit" />
        <div className="nav-section">Configure</div>
        <NavItem to="/systems" icon={<Cable size={17} />} label="Systems" />
        <NavItem to="/mapper" icon={<Workflow size={17} />} label="Field mapper" />
        <NavItem to="/ownership" icon={<Activity size={17} />} label="Ownership" />
        <NavItem to="/history" icon={<FileClock size={17} />} label="History" />
        {me.role === "admin" ? <NavItem to="/tokens" icon={<KeyRound size={17} />} label="Tokens" /> : null}
        <div className="sidebar-foot">Two-way field-level sync</div>
      </nav>
      <div className="main">
        <header className="topbar">
          <span className="crumbs">{title}</span>
          <span className="spacer" />
          <button type="button" className="btn ghost icon" onClick={toggleTheme} aria-label={theme === "dark" ? "Switch to the light theme" : "Switch to the dark theme"} title="Toggle theme">
            {theme === "dark" ? <Sun size={17} /> : <Moon size={17} />}
          </button>
          <div className="user-chip" aria-label={`Signed in as ${me.name}, ${ROLE_LABEL[me.role]}`}>
            <span className="avatar" aria-hidden="true">
              {me.name.slice(0, 1).toUpperCase()}
            </span>
            <span>{me.name}</span>
            <span className="role-pill">{ROLE_LABEL[me.role]}</span>
          </div>
          <button type="button" className="btn ghost icon" onClick={signOut} aria-label="Sign out" title="Sign out">
            <LogOut size={17} />
          </button>
        </header>
        <AlertBanner metrics={metrics.data} />
        <main className="content" id="main" tabIndex={-1}>
          <Suspense fallback={<Loading />}>
            <Routes>
              <Route path="/" element={<Dashboard />} />
              <Route path="/systems" element={<SystemsPage />} />
              <Route path="/systems/new" element={<SystemEditPage />} />
              <Route path="/systems/:id" element={<SystemEditPage />} />
              <Route path="/systems/:id/plan" element={<PlanPage />} />
              <Route path="/mapper" element={<MapperPage />} />
              <Route path="/ownership" element={<OwnershipPage />} />
              <Route path="/exceptions" element={<ExceptionsPage />} />
              <Route path="/exceptions/:id" element={<ExceptionsPage />} />
              <Route path="/approvals" element={<ApprovalsPage />} />
              <Route path="/scheduled" element={<ScheduledPage />} />
              <Route path="/dead-letters" element={<DeadLettersPage />} />
              <Route path="/dead-letters/:id" element={<DeadLettersPage />} />
              <Route path="/audit" element={<AuditPage />} />
              <Route path="/records/:id" element={<RecordPage />} />
              <Route path="/tokens" element={<TokensPage />} />
              <Route path="/history" element={<HistoryPage />} />
              <Route path="*" element={<Navigate to="/" replace />} />
            </Routes>
          </Suspense>
        </main>
      </div>
    </div>
  );
}

function NavItem({ to, icon, label, count, tone, end, countLabel }: { to: string; icon: ReactNode; label: string; count?: number | undefined; tone?: "hot" | "warm"; end?: boolean; countLabel?: string }) {
  return (
    <NavLink to={to} end={end} className="nav-item">
      <span aria-hidden="true">{icon}</span>
      <span className="label">{label}</span>
      {count !== undefined ? (
        <span className={`count ${count > 0 ? tone ?? "" : ""}`} aria-label={`${count} ${countLabel ?? label.toLowerCase()}`}>
          {count > 9999 ? `${Math.floor(count / 1000)}k` : formatCount(count)}
        </span>
      ) : null}
    </NavLink>
  );
}
