/** @odoo-module **/
// A small chart for CRM AI's JSON chart fields (a lead's propensity over time, a model's
// field importance, reliability diagram and versions), drawn with the Chart.js that
// Odoo ships (bundle "web.chartjs_lib"): no network resource.
//
// The field holds JSON: {type: "line" | "bar", labels: [...], horizontal: bool,
//   datasets: [{label, data: [...], dashed: bool}], x: {title, min, max}, y: {title, min, max, suffix}}.
// For a line with numeric x (a reliability diagram), data items are {x, y}.
import { loadBundle } from "@web/core/assets";
import { getColor } from "@web/core/colors/colors";
import { registry } from "@web/core/registry";
import { standardFieldProps } from "@web/views/fields/standard_field_props";
import { Component, onWillStart, useEffect, useRef } from "@odoo/owl";

export class CrmAiChartField extends Component {
    static template = "crm_ai.ChartField";
    static props = { ...standardFieldProps, height: { type: String, optional: true } };

    setup() {
        this.canvasRef = useRef("canvas");
        this.chart = null;
        onWillStart(() => loadBundle("web.chartjs_lib"));
        useEffect(
            () => {
                this.renderChart();
                return () => {
                    if (this.chart) {
                        this.chart.destroy();
                        this.chart = null;
                    }
                };
            },
            () => [this.props.record.data[this.props.name]]
        );
    }

    get spec() {
        const raw = this.props.record.data[this.props.name];
        if (!raw) {
            return null;
        }
        try {
            return JSON.parse(raw);
        } catch {
            return null;
        }
    }

    renderChart() {
        if (this.chart) {
            this.chart.destroy();
            this.chart = null;
        }
        const spec = this.spec;
        if (!spec || !Array.isArray(spec.datasets) || !this.canvasRef.el) {
            return;
        }
        const numericX = Boolean(spec.x && spec.x.min !== undefined);
        const datasets = spec.datasets.map((dataset, index) => {
            const color = dataset.color || getColor(index + 1, "light", "odoo");
            return {
                label: dataset.label,
                data: dataset.data,
                borderColor: color,
                backgroundColor: dataset.fill ? color + "33" : color,
                borderDash: dataset.dashed ? [6, 4] : [],
                pointRadius: dataset.dashed ? 0 : 3,
                fill: Boolean(dataset.fill),
                tension: 0,
                showLine: spec.type === "line",
            };
        });
        const axis = (axisSpec = {}, numeric = true) => ({
            type: numeric ? "linear" : "category",
            min: axisSpec.min,
            max: axisSpec.max,
            title: { display: Boolean(axisSpec.title), text: axisSpec.title },
            ticks: axisSpec.suffix ? { callback: (value) => `${value}${axisSpec.suffix}` } : {},
        });
        const horizontal = Boolean(spec.horizontal);
        this.chart = new Chart(this.canvasRef.el, {
            type: spec.type === "bar" ? "bar" : "line",
            data: { labels: spec.labels, datasets },
            options: {
                indexAxis: horizontal ? "y" : "x",
                maintainAspectRatio: false,
                animation: false,
                plugins: { legend: { display: datasets.length > 1 } },
                scales: horizontal
                    ? { x: axis(spec.x), y: axis(spec.y, false) }
                    : { x: axis(spec.x, numericX), y: axis(spec.y) },
            },
        });
    }
}

export const crmAiChartField = {
    component: CrmAiChartField,
    supportedTypes: ["text", "char"],
    extractProps: ({ attrs }) => ({ height: attrs.height }),
};

registry.category("fields").add("crm_ai_chart", crmAiChartField);
