/** @odoo-module **/
import { registry } from "@web/core/registry";

// A salesperson opens a lead, reads its AI propensity, reasons and how it moved (chart,
// what changed), then filters the pipeline down to high-propensity leads.
registry.category("web_tour.tours").add("crm_ai_tour", {
    url: "/odoo/crm",
    steps: () => [
        {
            content: "The pipeline shows the AI propensity on the card",
            trigger: ".o_kanban_record:contains('AI Tour Hot Lead') .o_crm_ai_propensity",
        },
        {
            content: "The hot lead rose 15 points this week: an up arrow on its card",
            trigger: ".o_kanban_record:contains('AI Tour Hot Lead') .o_crm_ai_propensity .fa-arrow-up",
        },
        {
            content: "Open the hot lead",
            trigger: ".o_kanban_record:contains('AI Tour Hot Lead')",
            run: "click",
        },
        {
            content: "Open the AI Insights tab",
            trigger: ".o_notebook .nav-link:contains('AI Insights')",
            run: "click",
        },
        {
            content: "The propensity is shown as a progress bar",
            trigger: ".o_field_widget[name='ai_propensity'] .o_progressbar",
        },
        {
            content: "The strongest reason is its source",
            trigger: ".o_field_widget[name='ai_propensity_reasons_html'] li:contains('Source: Referral')",
        },
        {
            content: "The propensity over time is drawn (Chart.js canvas)",
            trigger: ".o_field_widget[name='ai_propensity_chart'] .o_crm_ai_chart canvas",
        },
        {
            content: "The change over the last 7 days",
            trigger: ".o_field_widget[name='ai_propensity_trend_arrow']:contains('+15')",
        },
        {
            content: "What changed since the previous score",
            trigger: ".o_field_widget[name='ai_propensity_changes_html']:contains('Since')",
        },
        {
            content: "Back to the pipeline",
            trigger: ".o_breadcrumb .o_back_button a, .o_breadcrumb li.breadcrumb-item a",
            run: "click",
        },
        {
            content: "Open the search options",
            trigger: ".o_searchview_dropdown_toggler",
            run: "click",
        },
        {
            content: "Filter on high propensity",
            trigger: ".o_filter_menu .o_menu_item:contains('High propensity')",
            run: "click",
        },
        {
            content: "The filter is applied",
            trigger: ".o_searchview_facet:contains('High propensity')",
        },
        {
            content: "The hot lead stays, the cold one is filtered out",
            trigger: ".o_kanban_renderer:not(:has(.o_kanban_record:contains('AI Tour Cold Lead'))) .o_kanban_record:contains('AI Tour Hot Lead')",
        },
        {
            content: "Remove the filter",
            trigger: ".o_searchview_facet:contains('High propensity') .o_facet_remove",
            run: "click",
        },
        {
            content: "Switch to the list",
            trigger: ".o_switch_view.o_list",
            run: "click",
        },
        {
            content: "A scored lead shows its propensity bar",
            trigger: ".o_data_row:contains('AI Tour Hot Lead') td[name='ai_propensity'] .o_progressbar",
        },
        {
            content: "A won lead that was never scored shows no made-up 0 %",
            trigger: ".o_data_row:contains('AI Tour Won Lead') td[name='ai_propensity']:not(:has(.o_progressbar))",
        },
        {
            content: "Open the won lead",
            trigger: ".o_data_row:contains('AI Tour Won Lead') td[name='name']",
            run: "click",
        },
        {
            content: "The won lead's form is open",
            trigger: ".o_breadcrumb:contains('AI Tour Won Lead')",
        },
        {
            content: "A closed lead's form has no AI Insights tab (CRM AI scores open leads)",
            trigger: ".o_notebook:not(:has(.nav-link:contains('AI Insights'))) .nav-link:contains('Internal Notes')",
        },
    ],
});
