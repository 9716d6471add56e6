import { Navigate, Route, Router } from "@solidjs/router";
import { lazy } from "solid-js";
import { render } from "solid-js/web";
import "./styles.css";
import { Clusters } from "./pages/Clusters.tsx";
import { DeploymentDetail } from "./pages/DeploymentDetail.tsx";
import { Deployments } from "./pages/Deployments.tsx";
import { Fleet } from "./pages/Fleet.tsx";
import { Login } from "./pages/Login.tsx";
import { NotBuilt } from "./pages/NotBuilt.tsx";
import { Shell } from "./ui/Shell.tsx";

// Pages past the fleet load on first visit: the first page does not ship uPlot or the governance forms.
const Instance = lazy(() => import("./pages/Instance.tsx").then((m) => ({ default: m.Instance })));

render(
  () => (
    <Router>
      <Route path="/login" component={Login} />
      <Route path="/" component={Shell}>
        <Route path="/" component={() => <Navigate href="/fleet" />} />
        <Route path="/fleet" component={Fleet} />
        <Route path="/clusters" component={Clusters} />
        <Route path="/deployments" component={Deployments} />
        <Route path="/instances/:id" component={Instance} />
        <Route path="/deployments/:id" component={DeploymentDetail} />
        <Route path="/ai" component={() => <NotBuilt title="AI decisions and cost" api="/api/ai/decisions, /api/ai/decisions/totals, /api/ai/prices" />} />
        <Route path="/governance" component={() => <NotBuilt title="Governance" api="/api/users, /api/roles, /api/api-keys, /api/quotas, /api/policies, /api/audit, /api/reports" />} />
        <Route path="/settings" component={() => <NotBuilt title="Settings" api="/api/ai/prices, /api/config, /api/health" />} />
        <Route path="*" component={() => <NotBuilt title="Page not found" api="" />} />
      </Route>
    </Router>
  ),
  document.getElementById("root")!,
);
