import { Navigate, Route, Router } from "@solidjs/router";
import { lazy } from "solid-js";
import { render } from "solid-js/web";
import "./styles.css";
import { Fleet } from "./pages/Fleet.tsx";
import { Login } from "./pages/Login.tsx";
import { NotBuilt } from "./pages/NotBuilt.tsx";
import { Shell } from "./ui/Shell.tsx";

// Every page but the fleet loads on first visit: the first page ships only what paints the fleet table.
const Clusters = lazy(() => import("./pages/Clusters.tsx").then((m) => ({ default: m.Clusters })));
const Deployments = lazy(() => import("./pages/Deployments.tsx").then((m) => ({ default: m.Deployments })));
const DeploymentDetail = lazy(() => import("./pages/DeploymentDetail.tsx").then((m) => ({ default: m.DeploymentDetail })));
const Instance = lazy(() => import("./pages/Instance.tsx").then((m) => ({ default: m.Instance })));
const Ai = lazy(() => import("./pages/Ai.tsx").then((m) => ({ default: m.Ai })));
const Alerts = lazy(() => import("./pages/Alerts.tsx").then((m) => ({ default: m.Alerts })));
const DeadLetters = lazy(() => import("./pages/DeadLetters.tsx").then((m) => ({ default: m.DeadLetters })));
const Rollouts = lazy(() => import("./pages/Rollouts.tsx").then((m) => ({ default: m.Rollouts })));
const RolloutDetail = lazy(() => import("./pages/RolloutDetail.tsx").then((m) => ({ default: m.RolloutDetail })));
const Pipelines = lazy(() => import("./pages/Pipelines.tsx").then((m) => ({ default: m.Pipelines })));
const PipelineDetail = lazy(() => import("./pages/PipelineDetail.tsx").then((m) => ({ default: m.PipelineDetail })));
const CiHooks = lazy(() => import("./pages/CiHooks.tsx").then((m) => ({ default: m.CiHooks })));
const Settings = lazy(() => import("./pages/Settings.tsx").then((m) => ({ default: m.Settings })));
const gov = () => import("./pages/governance/index.ts");
const Governance = lazy(() => gov().then((m) => ({ default: m.Governance })));
const Users = lazy(() => gov().then((m) => ({ default: m.Users })));
const Roles = lazy(() => gov().then((m) => ({ default: m.Roles })));
const ApiKeys = lazy(() => gov().then((m) => ({ default: m.ApiKeys })));
const Quotas = lazy(() => gov().then((m) => ({ default: m.Quotas })));
const Policies = lazy(() => gov().then((m) => ({ default: m.Policies })));
const Audit = lazy(() => gov().then((m) => ({ default: m.Audit })));
const Reports = lazy(() => gov().then((m) => ({ default: m.Reports })));
const Schedules = lazy(() => gov().then((m) => ({ default: m.Schedules })));

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
        <Route path="/rollouts" component={Rollouts} />
        <Route path="/rollouts/:id" component={RolloutDetail} />
        <Route path="/pipelines" component={Pipelines} />
        <Route path="/pipelines/:id" component={PipelineDetail} />
        <Route path="/ci-hooks" component={CiHooks} />
        <Route path="/ai" component={Ai} />
        <Route path="/alerts" component={Alerts} />
        <Route path="/dead-letters" component={DeadLetters} />
        <Route path="/governance" component={Governance}>
          <Route path="/" component={() => <Navigate href="/governance/users" />} />
          <Route path="/users" component={Users} />
          <Route path="/roles" component={Roles} />
          <Route path="/api-keys" component={ApiKeys} />
          <Route path="/quotas" component={Quotas} />
          <Route path="/policies" component={Policies} />
          <Route path="/audit" component={Audit} />
          <Route path="/reports" component={Reports} />
          <Route path="/schedules" component={Schedules} />
        </Route>
        <Route path="/settings" component={Settings} />
        <Route path="*" component={() => <NotBuilt title="Page not found" api="" />} />
      </Route>
    </Router>
  ),
  document.getElementById("root")!,
);
