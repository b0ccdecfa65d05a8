/** @odoo-module **/
import { registry } from "@web/core/registry";

// A salesperson opens an opportunity of a regular customer: the AI tab lists what the
// customer will order again and what to offer, with the reasons, and the button turns
// the products kept into a quotation linked to the opportunity.
registry.category("web_tour.tours").add("crm_ai_recommend_tour", {
    steps: () => [
        {
            content: "Open the AI Insights tab",
            trigger: ".o_notebook .nav-link:contains('AI Insights')",
            run: "click",
        },
        {
            content: "The customer's own products, with the rhythm",
            trigger: ".o_field_widget[name='ai_reorder_recommendation_ids'] td:contains('You order this about every')",
        },
        {
            content: "New products, with who buys them",
            trigger: ".o_field_widget[name='ai_new_recommendation_ids'] td:contains('also buy this')",
        },
        {
            content: "Make a quotation of them",
            trigger: "button[name='action_ai_quotation']",
            run: "click",
        },
        {
            content: "The wizard lists the recommended products",
            trigger: ".modal .o_field_widget[name='recommendation_ids'] .o_data_row:nth-child(2)",
        },
        {
            content: "Drop the first one",
            trigger: ".modal .o_field_widget[name='recommendation_ids'] .o_data_row:first-child .o_list_record_remove",
            run: "click",
        },
        {
            content: "Create the quotation",
            trigger: ".modal button[name='action_create_quotation']",
            run: "click",
        },
        {
            content: "A quotation with the products kept, for this opportunity",
            trigger: ".o_form_view .o_field_widget[name='order_line'] .o_data_row",
        },
        {
            content: "It is a draft quotation",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Quotation')",
        },
    ],
});
